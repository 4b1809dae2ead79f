import { checkMergedRows, emptyPartial, maskRule, merge, type AttentionSpec, type Partial, type QBlockPlan } from '@longattn/attention';
import type { TileKernel } from '@longattn/kernels';
import type { BlockSource } from './block-source.ts';
import { releasedTileOutputs } from './young-gc.ts';

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
  const merged = merge(partials);
  releasedTileOutputs(partials.reduce((n, p) => n + p.o.byteLength + p.lse.byteLength, 0));
  checkMergedRows(spec, block, merged); // scores past float32 fail the job, never a NaN written
  return merged;
}

/**
 * Runs the kernel on tiles of the job's full tile size (mask-free and masked), merges their
 * partials, and repeats: the kernel builds what it caches per shape (ort sessions and their
 * memory, gpu.js programs), the merge gets compiled, and the buffers get touched — first touches
 * of fresh memory are slow on some VMs — all before the timed compute starts.
 */
export async function warmKernel(
  kernel: TileKernel,
  spec: AttentionSpec,
  blocks: { blockQ: number; blockK: number },
  rounds = 3,
): Promise<void> {
  const rows = Math.min(blocks.blockQ, spec.Sq);
  const keys = Math.min(blocks.blockK, spec.Sk);
  const q = new Float32Array(rows * spec.D).fill(0.01);
  const kv = new Float32Array(keys * spec.D).fill(0.01);
  for (let round = 0; round < rounds; round++) {
    const partials = [];
    for (const full of [true, false]) {
      const rule = full ? { diag: 0, left: Infinity, right: Infinity } : { diag: 0, left: Infinity, right: 0 };
      partials.push(
        await kernel.run({ rows, keys, D: spec.D, scale: spec.scale, qStart: 0, kStart: full ? 0 : keys, rule, full, q, k: kv, v: kv }),
      );
    }
    merge(partials);
  }
}
