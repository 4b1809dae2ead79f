import { keyHigh, keyLow, maskRule, type AttentionSpec, type MaskRule } from './spec.ts';

/**
 * One unit of kernel work: rows [qStart, qStart+rows) of query head h (batch b) against keys
 * [kStart, kStart+keys) of kv head kvh. `full` means the mask hides nothing inside the tile.
 */
export interface Tile {
  b: number;
  h: number;
  kvh: number;
  qBlock: number;
  qStart: number;
  rows: number;
  /** Key-block index: tiles of a q-block are merged in this order. */
  kBlock: number;
  /**
   * Keys [kStart, kStart+keys): block kBlock's keys (aligned to blockK) trimmed to those some row
   * of the q-block can see, so a diagonal or window-edge tile computes no key every row masks.
   */
  kStart: number;
  keys: number;
  full: boolean;
  /** 4·D per visible (query, key) pair inside the tile: the work it asks of a kernel. */
  flops: number;
}

/** The tiles of one block of query rows of one head, in key order, plus what the reducer needs. */
export interface QBlockPlan {
  b: number;
  h: number;
  qBlock: number;
  qStart: number;
  rows: number;
  /** Empty when every row is fully masked (output 0, lse -Infinity without any kernel work). */
  tiles: Tile[];
}

export interface PlanOptions {
  /** Query rows per tile. */
  blockQ: number;
  /** Keys per tile (tiles are aligned to multiples of blockK). */
  blockK: number;
  /**
   * Block-sparse layout: return false to drop tile (qBlock, kBlock) entirely. The tile's keys are
   * then masked for every row of the block (the result is exact attention under that mask).
   */
  keepBlock?: (qBlock: number, kBlock: number) => boolean;
}

export interface Plan {
  spec: AttentionSpec;
  blockQ: number;
  blockK: number;
  qBlocks: QBlockPlan[];
  tileCount: number;
  /** 4·D per visible (query, key) pair inside the kept tiles: the work actually asked of kernels. */
  flops: number;
}

/**
 * Turns a spec into the tile grid: (b, h, qBlock) × key blocks, dropping tiles the mask empties,
 * trimming each tile to the keys its rows can see, and marking tiles the mask fully covers. Key blocks are aligned to blockK, so every tile has equal
 * size except at edges, which keeps work balanced however the engine spreads tiles.
 */
export function plan(spec: AttentionSpec, options: PlanOptions): Plan {
  const { blockQ, blockK } = options;
  if (!Number.isInteger(blockQ) || blockQ < 1) throw new RangeError(`blockQ must be an integer ≥ 1, got ${blockQ}`);
  if (!Number.isInteger(blockK) || blockK < 1) throw new RangeError(`blockK must be an integer ≥ 1, got ${blockK}`);
  const rule = maskRule(spec);
  const qBlockCount = Math.ceil(spec.Sq / blockQ);
  // The tile layout is the same for every (b, h): compute it once per q-block.
  const shapes: { tiles: Omit<Tile, 'b' | 'h' | 'kvh'>[]; pairs: number }[] = [];
  for (let qb = 0; qb < qBlockCount; qb++) {
    const qStart = qb * blockQ;
    const rows = Math.min(blockQ, spec.Sq - qStart);
    const tiles: Omit<Tile, 'b' | 'h' | 'kvh'>[] = [];
    let pairs = 0;
    const lo = Math.max(0, keyLow(rule, qStart));
    const hi = Math.min(spec.Sk - 1, keyHigh(rule, qStart + rows - 1));
    for (let kb = Math.floor(lo / blockK); hi >= lo && kb * blockK <= hi; kb++) {
      if (options.keepBlock && !options.keepBlock(qb, kb)) continue;
      // The block's keys, trimmed to those some row of the q-block sees (lo/hi grow with the row).
      const kStart = Math.max(kb * blockK, lo);
      const keys = Math.min((kb + 1) * blockK, spec.Sk, hi + 1) - kStart;
      const visible = visiblePairs(rule, qStart, rows, kStart, keys);
      if (visible === 0) continue;
      pairs += visible;
      tiles.push({ qBlock: qb, qStart, rows, kBlock: kb, kStart, keys, full: visible === rows * keys, flops: 4 * visible * spec.D });
    }
    shapes.push({ tiles, pairs });
  }
  const qBlocks: QBlockPlan[] = [];
  let tileCount = 0;
  let pairs = 0;
  const group = spec.H / spec.Hk;
  for (let b = 0; b < spec.B; b++) {
    for (let h = 0; h < spec.H; h++) {
      const kvh = Math.floor(h / group);
      for (let qb = 0; qb < qBlockCount; qb++) {
        const shape = shapes[qb]!;
        const qStart = qb * blockQ;
        qBlocks.push({
          b,
          h,
          qBlock: qb,
          qStart,
          rows: Math.min(blockQ, spec.Sq - qStart),
          tiles: shape.tiles.map((t) => ({ ...t, b, h, kvh })),
        });
        tileCount += shape.tiles.length;
        pairs += shape.pairs;
      }
    }
  }
  return { spec, blockQ, blockK, qBlocks, tileCount, flops: 4 * pairs * spec.D };
}

/** Number of (query, key) pairs the mask lets through inside a tile. */
export function visiblePairs(rule: MaskRule, qStart: number, rows: number, kStart: number, keys: number): number {
  let n = 0;
  const kEnd = kStart + keys - 1;
  for (let i = qStart; i < qStart + rows; i++) {
    const lo = Math.max(kStart, keyLow(rule, i));
    const hi = Math.min(kEnd, keyHigh(rule, i));
    if (hi >= lo) n += hi - lo + 1;
  }
  return n;
}
