import { emptyPartial, maskRule, merge, type AttentionSpec, type Partial, type QBlockPlan } from '@longattn/attention';
import type { TileKernel } from '@longattn/kernels';
import type { BlockSource } from './block-source.ts';

/**
 * Computes one q-block: every tile of it through the kernel, then the exact merge of the tiles'
 * partials in key order. Both engines produce a q-block's output only through this function, so
 * their bits agree for the same plan and backend.
 * Returns o [rows, D], lse [rows] (-Infinity for rows that see no key).
 */
export async function computeQBlock(kernel: TileKernel, spec: AttentionSpec, block: QBlockPlan, source: BlockSource): Promise<Partial> {
  if (block.tiles.length === 0) return emptyPartial(block.rows, spec.D, 0);
  const rule = maskRule(spec);
  const q = source.queries(block.b, block.h, block.qStart, block.rows);
  const partials: Partial[] = [];
  for (const tile of block.tiles) {
    partials.push(
      await kernel.run({
        rows: tile.rows,
        keys: tile.keys,
        D: spec.D,
        scale: spec.scale,
        qStart: tile.qStart,
        kStart: tile.kStart,
        rule,
        full: tile.full,
        q,
        k: source.keys(tile.b, tile.kvh, tile.kStart, tile.keys),
        v: source.values(tile.b, tile.kvh, tile.kStart, tile.keys),
      }),
    );
  }
  return merge(partials);
}

/**
 * Runs two 1×1 tiles (one mask-free, one masked) with the job's D and scale, so a kernel builds
 * whatever it caches per shape (ort sessions, gpu.js programs) before the timed compute starts.
 */
export async function warmKernel(kernel: TileKernel, spec: AttentionSpec): Promise<void> {
  const one = new Float32Array(spec.D).fill(0.5);
  for (const full of [true, false]) {
    await kernel.run({ rows: 1, keys: 1, D: spec.D, scale: spec.scale, qStart: 0, kStart: 0, rule: { diag: 0, left: 0, right: 0 }, full, q: one, k: one, v: one });
  }
}
