import { type Band, bandTile } from './band-tiles.ts';
import { linearPlan } from './linear-plan.ts';
import { keyHigh, keyLow, maskRule, visiblePairs, type MaskRule } from './mask.ts';
import { hasPattern } from './pattern.ts';
import { patternTiles } from './pattern-tiles.ts';
import type { AttentionSpec } from './spec.ts';

/**
 * One unit of kernel work: rows [qStart, qStart+rows) of query head h (batch b) against keys
 * [kStart, kStart+keys) of kv head kvh. `full` means the mask hides nothing inside the tile.
 */
export interface Tile {
  b: number;
  h: number;
  kvh: number;
  /** Row block within the head: qStart = qBlock·blockQ (as kBlock is the key block). */
  qBlock: number;
  qStart: number;
  rows: number;
  /** Key-block index (under a pattern: the tile's place in its q-block), unique within the q-block: tiles run in this order. */
  kBlock: number;
  /**
   * Keys [kStart, kStart+keys): block kBlock's keys (aligned to blockK, or cut from the band's start under a window) trimmed to those some row
   * of the q-block can see, so a diagonal or window-edge tile computes no key every row masks.
   */
  kStart: number;
  keys: number;
  full: boolean;
  /** 4·D per visible (query, key) pair inside the tile: the work it asks of a kernel. */
  flops: number;
  /**
   * Pattern tiles (pattern-tiles.ts): only rows [qStart+from, qStart+from+count) of the q-block;
   * the other rows get o = 0, lse = −∞ from this tile. Absent: every row of the q-block.
   */
  rowSpan?: [from: number, count: number];
  /**
   * Pattern tiles: the keys gathered from several runs, flat [a0, b0, a1, b1, …] half-open, in key
   * order (kStart = a0, keys = Σ (b − a)); the kernel sees them as one contiguous block. Absent:
   * the keys [kStart, kStart+keys).
   */
  keySpans?: number[];
  /**
   * Stride tiles (stride-tiles.ts): the rowSpan's rows are qStart+from, +rowStep, … (count of
   * them), the keys kStart, kStart+keyStep, … (keys of them), gathered into contiguous blocks for
   * the kernel; keyChunk [a, b) is the contiguous key range the gather reads (shared by the
   * chunk's tiles of every residue class). Absent: contiguous rows and keys.
   */
  rowStep?: number;
  keyStep?: number;
  keyChunk?: [start: number, end: number];
  /**
   * A band tile (band-tiles.ts): the q-block's rows in sub-blocks, each against the shared keys and
   * its own window, run as one batched call by kernels with a band path, else as `band.parts`.
   * keySpans (or kStart, keys) then list every key some row sees: the shared runs and the band's.
   */
  band?: Band;
  /**
   * The plan's only tile for its rows (a q-block of one tile, or a row group of one tile): its
   * partial is those rows' output as it is, merged with nothing. A kernel may then form o by a
   * fused path whose bits differ from its tile graph's (docs/math.md, "Sole tiles"), the same
   * bits whether or not the caller also wants lse. Set by the planner alone, so both engines agree.
   */
  sole?: true;
}

/** A tile's keys as flat half-open runs [a0, b0, …] in key order (one run unless it gathers several). */
export function tileKeySpans(tile: Pick<Tile, 'kStart' | 'keys' | 'keySpans' | 'keyChunk'>): number[] {
  if (tile.keyChunk) return [...tile.keyChunk]; // a stride tile: what its gather reads
  return tile.keySpans ?? [tile.kStart, tile.kStart + tile.keys];
}

/** The tiles of one block of query rows of one head, in key order, plus what the reducer needs. */
export interface QBlockPlan {
  /** Position in the plan, 0 … qBlockCount−1: (b·H + h)·qBlocksPerHead + qBlock. Engines and blobs use it. */
  index: number;
  b: number;
  h: number;
  /** Row block within the head. */
  qBlock: number;
  qStart: number;
  rows: number;
  /** Empty when every row is fully masked (output 0, lse -Infinity without any kernel work). */
  tiles: Tile[];
}

export interface PlanOptions {
  /** Query rows per tile. */
  blockQ: number;
  /** Keys per tile (tiles are aligned to multiples of blockK; under a left-bounded window, cut from each band's start). */
  blockK: number;
  /**
   * Block-sparse layout: return false to drop tile (qBlock, kBlock) entirely. The tile's keys are
   * then masked for every row of the block (the result is exact attention under that mask).
   * Counting tiles then costs O(key blocks) per q-block instead of O(1).
   */
  keepBlock?: (qBlock: number, kBlock: number) => boolean;
}

/**
 * A lazy tile grid: totals up front, a q-block's tiles only when asked for (the same tiles every
 * time), so planning holds no tile and costs O(q-blocks per head) whatever the job's size.
 * Q-blocks are numbered in plan order: b, then h, then the row block.
 */
export interface Plan {
  spec: AttentionSpec;
  blockQ: number;
  blockK: number;
  /** ⌈Sq / blockQ⌉: row blocks of one head (the tile layout is the same for every (b, h)). */
  qBlocksPerHead: number;
  /** B·H·qBlocksPerHead. */
  qBlockCount: number;
  tileCount: number;
  /** Tiles of the full grid (qBlockCount · ⌈Sk / blockK⌉) the mask empties, never computed. */
  skippedTiles: number;
  /** 4·D per visible (query, key) pair inside the kept tiles: the work actually asked of kernels. */
  flops: number;
  /** Q-block `index` (its position in the plan) with its tiles in key order, generated now. */
  block(index: number): QBlockPlan;
  /** Every q-block in plan order, each generated when reached (tests, small jobs). */
  blocks(): Generator<QBlockPlan>;
  /** Where q-block `index` sits (its rows), without generating its tiles. */
  locate(index: number): Omit<QBlockPlan, 'tiles'>;
  /** Tiles of q-block `index`, without generating them. */
  tilesIn(index: number): number;
  /** FLOPs of q-block `index`'s tiles, without generating them. */
  flopsIn(index: number): number;
}

/** Pattern tiles a plan keeps after counting them (~200 bytes each: ≤ 13 MB per plan); q-blocks past it generate theirs when reached. */
const KEPT_PATTERN_TILES = 1 << 16;

/**
 * Turns a spec into the tile grid: (b, h, qBlock) × key blocks, dropping tiles the mask empties,
 * trimming each tile to the keys its rows can see, and marking tiles the mask fully covers. Key
 * blocks are aligned to blockK (a window's band: cut from its first key, keyOrigin), so every tile has equal size except at edges, which keeps work
 * balanced however the engine spreads tiles. Limits on block sizes and tile counts are the
 * engines' (docs/limits.md); this only requires integers ≥ 1.
 */
export function plan(spec: AttentionSpec, options: PlanOptions): Plan {
  const { blockQ, blockK, keepBlock } = options;
  if (!Number.isInteger(blockQ) || blockQ < 1) throw new RangeError(`blockQ must be an integer ≥ 1, got ${blockQ}`);
  if (!Number.isInteger(blockK) || blockK < 1) throw new RangeError(`blockK must be an integer ≥ 1, got ${blockK}`);
  if (spec.linear) return linearPlan(spec, options); // state and diagonal tiles (linear-plan.ts)
  const rule = maskRule(spec);
  const perHead = Math.ceil(spec.Sq / blockQ);
  const heads = spec.B * spec.H;
  const rowsOf = (qb: number) => Math.min(blockQ, spec.Sq - qb * blockQ);
  /** Keys [lo, hi] some row of row block qb sees (hi < lo: none); every key block in between keeps a visible pair. */
  const keyRange = (qb: number): [number, number] => {
    const qStart = qb * blockQ;
    return [Math.max(0, keyLow(rule, qStart)), Math.min(spec.Sk - 1, keyHigh(rule, qStart + rowsOf(qb) - 1))];
  };
  const patterned = hasPattern(spec);
  // A per-head block mask gives each head its own tiles; every other rule the same tiles per head.
  const headsDiffer = patterned && (spec.pattern?.blockMask?.heads ?? 1) > 1;
  const tilesAt = (qb: number, head: { b: number; h: number; kvh: number }): Tile[] => {
    const tiles = patterned
      ? patternTiles(spec, blockQ, blockK, qb, rowsOf(qb), head)
      : rowBlockTiles(spec, rule, options, qb, rowsOf(qb), keyRange(qb), head);
    // A window's band without its corners (band-tiles.ts): one tile whose parts are the tiles above.
    const band = keepBlock ? undefined : bandTile(spec, blockK, qb * blockQ, rowsOf(qb), tiles);
    return markSole(band ? [band] : tiles);
  };
  const group = spec.H / spec.Hk;
  const headOf = (h: number) => ({ b: 0, h, kvh: Math.floor(h / group) });
  // Pattern tiles cost O(rows · key blocks) to generate: their counts are kept once known (two numbers per row block and head).
  const memo = patterned
    ? {
        tiles: new Float64Array(perHead * (headsDiffer ? spec.H : 1)).fill(-1),
        flops: new Float64Array(perHead * (headsDiffer ? spec.H : 1)),
        grid: new Float64Array(perHead * (headsDiffer ? spec.H : 1)),
      }
    : undefined;
  // …and the tiles themselves while they are few (KEPT_PATTERN_TILES in all): a q-block's tiles then
  // cost nothing to generate again in the compute loop, where generating them cost about what a
  // band tile's GEMMs do (docs/math.md, "Cost follows the pattern").
  const kept: (Tile[] | undefined)[] = [];
  let keptTiles = 0;
  const counted = (qb: number, h: number): number => {
    const at = (headsDiffer ? h : 0) * perHead + qb;
    if (memo!.tiles[at]! < 0) {
      const tiles = tilesAt(qb, headOf(h));
      memo!.tiles[at] = tiles.length;
      memo!.flops[at] = tiles.reduce((sum, t) => sum + t.flops, 0);
      memo!.grid[at] = gridCells(tiles, blockK);
      if (keptTiles + tiles.length <= KEPT_PATTERN_TILES) {
        kept[at] = tiles;
        keptTiles += tiles.length;
      }
    }
    return at;
  };
  /** Tiles of row block qb of head (b, h): the kept ones (restamped with this head when it is another), else generated. */
  const patternBlockTiles = (qb: number, head: { b: number; h: number; kvh: number }): Tile[] => {
    const tiles = kept[counted(qb, head.h)];
    if (!tiles) return tilesAt(qb, head);
    if (tiles.length === 0 || (tiles[0]!.b === head.b && tiles[0]!.h === head.h)) return tiles;
    return tiles.map((t) => ({ ...t, ...head }));
  };
  const tilesOf = (qb: number, h = 0): number => {
    if (memo) return memo.tiles[counted(qb, h)]!;
    if (keepBlock) return tilesAt(qb, headOf(h)).length;
    const [lo, hi] = keyRange(qb);
    const origin = keyOrigin(rule, lo, keepBlock);
    return hi < lo ? 0 : Math.floor((hi - origin) / blockK) - Math.floor((lo - origin) / blockK) + 1;
  };
  const flopsOf = (qb: number, h = 0): number => {
    if (memo) return memo.flops[counted(qb, h)]!;
    if (keepBlock) return tilesAt(qb, headOf(h)).reduce((sum, t) => sum + t.flops, 0);
    return 4 * visiblePairs(rule, qb * blockQ, rowsOf(qb), 0, spec.Sk) * spec.D;
  };
  // Totals over one head (times B·H), or over each head when their tiles differ (times B).
  let headTiles = 0;
  /** Grid cells (q-block, aligned key block) holding a visible pair: the tiles themselves, except under a pattern (row groups, gathered keys). */
  let headCells = 0;
  let headFlops = 0;
  for (let h = 0; h < (headsDiffer ? spec.H : 1); h++) {
    for (let qb = 0; qb < perHead; qb++) {
      headTiles += tilesOf(qb, h);
      headCells += memo ? memo.grid[counted(qb, h)]! : tilesOf(qb, h);
      headFlops += flopsOf(qb, h);
    }
  }
  const repeat = headsDiffer ? spec.B : heads;
  const locate = (index: number): Omit<QBlockPlan, 'tiles'> => {
    if (!Number.isInteger(index) || index < 0 || index >= perHead * heads)
      throw new RangeError(`q-block ${index} is not in this plan (0 … ${perHead * heads - 1})`);
    const head = Math.floor(index / perHead);
    const qb = index % perHead;
    return { index, b: Math.floor(head / spec.H), h: head % spec.H, qBlock: qb, qStart: qb * blockQ, rows: rowsOf(qb) };
  };
  const block = (index: number): QBlockPlan => {
    const at = locate(index);
    const head = { b: at.b, h: at.h, kvh: Math.floor(at.h / group) };
    return { ...at, tiles: memo ? patternBlockTiles(at.qBlock, head) : tilesAt(at.qBlock, head) };
  };
  return {
    spec,
    blockQ,
    blockK,
    qBlocksPerHead: perHead,
    qBlockCount: perHead * heads,
    tileCount: headTiles * repeat,
    skippedTiles: perHead * Math.ceil(spec.Sk / blockK) * heads - headCells * repeat,
    flops: headFlops * repeat,
    block,
    *blocks() {
      for (let index = 0; index < perHead * heads; index++) yield block(index);
    },
    locate,
    tilesIn: (index) => tilesOf(locate(index).qBlock, locate(index).h),
    flopsIn: (index) => flopsOf(locate(index).qBlock, locate(index).h),
  };
}

/**
 * Marks `sole` the tiles that are the only tile for their rows: a q-block's one tile, or a row
 * group's (rowSpan) one tile — no other tile's rowSpan overlaps it — when no tile covers every
 * row and no stride tile (rowStep) mixes rows. A band tile is its q-block's only tile; its parts
 * stay unmarked (they run merged).
 */
function markSole(planned: Tile[]): Tile[] {
  // A stride's window part comes from a plan of its own (stride-tiles.ts), marked there: not here.
  const tiles = planned.map(({ sole: _, ...t }) => t);
  if (tiles.length === 1 && !tiles[0]!.rowStep) return [{ ...tiles[0]!, sole: true }];
  if (tiles.some((t) => !t.rowSpan || t.rowStep)) return tiles;
  // Row spans are never empty (count ≥ 1), so two tiles on the same rows overlap: the overlap test alone decides.
  const overlap = (a: Tile, b: Tile) => a.rowSpan![0] < b.rowSpan![0] + b.rowSpan![1] && b.rowSpan![0] < a.rowSpan![0] + a.rowSpan![1];
  return tiles.map((t) => (tiles.some((u) => u !== t && overlap(t, u)) ? t : { ...t, sole: true as const }));
}

/** Aligned key blocks [kb·blockK, (kb+1)·blockK) a q-block's tiles touch: each key of a tile is one some row of it sees. */
function gridCells(tiles: readonly Tile[], blockK: number): number {
  const touched = new Set<number>();
  for (const tile of tiles) {
    if (tile.keyStep) {
      // A stride tile's keys kStart + x·step: each is one some row of the q-block sees (stride-tiles.ts).
      const last = tile.kStart + (tile.keys - 1) * tile.keyStep;
      if (tile.keyStep <= blockK) for (let kb = Math.floor(tile.kStart / blockK); kb <= Math.floor(last / blockK); kb++) touched.add(kb);
      else for (let j = tile.kStart; j <= last; j += tile.keyStep) touched.add(Math.floor(j / blockK));
      continue;
    }
    const spans = tileKeySpans(tile);
    for (let x = 0; x < spans.length; x += 2) {
      for (let kb = Math.floor(spans[x]! / blockK); kb <= Math.floor((spans[x + 1]! - 1) / blockK); kb++) touched.add(kb);
    }
  }
  return touched.size;
}

/**
 * Where key blocks start counting for a row block whose visible keys are [lo, …]: 0 (blocks
 * aligned to blockK) unless the window bounds the left side, in which case a row block's band
 * starts at lo and is cut from there. A band of ≤ blockK keys then runs as one tile wherever it
 * falls: aligned cutting split half the bands of a (1023, 0) window at n = 32768 in two tiles,
 * each call paying its fixed cost for half the work (docs/math.md, "Cost follows the pattern").
 */
function keyOrigin(rule: MaskRule, lo: number, keepBlock: PlanOptions['keepBlock']): number {
  return rule.left === Infinity || keepBlock ? 0 : lo;
}

/** The tiles of row block qb of one head, in key order. */
function rowBlockTiles(
  spec: AttentionSpec,
  rule: MaskRule,
  { blockQ, blockK, keepBlock }: PlanOptions,
  qb: number,
  rows: number,
  [lo, hi]: [number, number],
  { b, h, kvh }: { b: number; h: number; kvh: number },
): Tile[] {
  const qStart = qb * blockQ;
  const tiles: Tile[] = [];
  const origin = keyOrigin(rule, lo, keepBlock);
  for (let kb = Math.floor((lo - origin) / blockK); hi >= lo && origin + kb * blockK <= hi; kb++) {
    if (keepBlock && !keepBlock(qb, kb)) continue;
    // The block's keys, trimmed to those some row of the q-block sees (lo/hi grow with the row).
    const kStart = Math.max(origin + kb * blockK, lo);
    const keys = Math.min(origin + (kb + 1) * blockK, spec.Sk, hi + 1) - kStart;
    const visible = visiblePairs(rule, qStart, rows, kStart, keys);
    if (visible === 0) continue;
    tiles.push({
      b,
      h,
      kvh,
      qBlock: qb,
      qStart,
      rows,
      kBlock: kb,
      kStart,
      keys,
      full: visible === rows * keys,
      flops: 4 * visible * spec.D,
    });
  }
  return tiles;
}
