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
