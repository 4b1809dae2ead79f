import {
  checkMergedRows,
  emptyPartial,
  hasPattern,
  markVisible,
  maskRule,
  merge,
  type AttentionSpec,
  type QBlockPlan,
  type Tile,
  type TilePartial,
} from '@longattn/attention';
import type { TileKernel } from '@longattn/kernels';
import type { BlockSource } from './block-source.ts';
import { releasedTileOutputs } from './young-gc.ts';

/**
 * The one tile loop: each tile's blocks from `source`, through the kernel, in the given order.
 * A tile's queries are read once per run of tiles with the same rows. `before` runs ahead of
 * each tile (fault tests throttle there). Returns the tiles' partials, in order:
 * o [rows, D] normalised over the tile's keys, lse [rows] (-Infinity where a row saw no key).
 */
export async function computeTiles(
  kernel: TileKernel,
  spec: AttentionSpec,
  tiles: readonly Tile[],
  source: BlockSource,
  before?: (tile: Tile) => Promise<void> | void,
): Promise<TilePartial[]> {
  const rule = maskRule(spec);
  const patterned = hasPattern(spec); // partial tiles then carry their mask (docs/math.md, "Patterns")
  const partials: TilePartial[] = [];
  let rowsOf: Tile | undefined;
  let q: Float32Array = new Float32Array(0);
  for (const tile of tiles) {
    await before?.(tile);
    if (!rowsOf || rowsOf.b !== tile.b || rowsOf.h !== tile.h || rowsOf.qStart !== tile.qStart || rowsOf.rows !== tile.rows) {
      q = source.queries(tile.b, tile.h, tile.qStart, tile.rows);
      rowsOf = tile;
    }
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
        ...(patterned && !tile.full ? { visible: markVisible(spec, tile.h, tile.qStart, tile.rows, tile.kStart, tile.keys) } : {}),
        q,
        k: source.keys(tile.b, tile.kvh, tile.kStart, tile.keys),
        v: source.values(tile.b, tile.kvh, tile.kStart, tile.keys),
      }),
    );
  }
  return partials;
}

/**
 * Computes one q-block: every tile of it through the kernel (computeTiles), then the exact merge
 * of the tiles' partials in key order. Both engines produce a q-block's output only through this
 * function, so their bits agree for the same plan and backend.
 * Returns o [rows, D], lse [rows] (-Infinity for rows that see no key).
 */
export async function computeQBlock(
  kernel: TileKernel,
  spec: AttentionSpec,
  block: QBlockPlan,
  source: BlockSource,
  before?: (tile: Tile) => Promise<void> | void,
): Promise<TilePartial> {
  if (block.tiles.length === 0) return emptyPartial(block.rows, spec.D, 0);
  const partials = await computeTiles(kernel, spec, block.tiles, source, before);
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
