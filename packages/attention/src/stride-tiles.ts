import { hasPattern, markVisibleSpans, rowRule, strideCount, type RowRule } from './pattern.ts';
import { plan, type Tile } from './planner.ts';
import type { AttentionSpec } from './spec.ts';

type Head = { b: number; h: number; kvh: number };

/**
 * Rows of a band sub-group: under a stride the q-blocks are long (strideBlocks), and the
 * intervals' tiles (window, sinks, globals, block mask) are cut per run of this many rows, as
 * they are on the ordinary q-block grid (docs/math.md, "Cost follows the pattern").
 */
export const STRIDE_BAND_ROWS = 256;

/** Rows of each residue class a default strided q-block holds (strideBlocks). */
export const STRIDE_CLASS_ROWS = 128;

/** Bytes of K (and as many of V) one key chunk of stride tiles reads: the gather's per-thread buffer (compute-block.ts). */
export const STRIDE_CHUNK_BYTES = 16 << 20;

/**
 * The contiguous keys one chunk of stride tiles reads, a multiple of S: every class's tile of the
 * chunk gathers its keys (one in S, at most blockK of them: a tile's area stays within
 * blockQ × blockK) from the same read, so K and V are read once per q-block and chunk, not once per class.
 */
export function strideChunkKeys(S: number, D: number, blockK: number): number {
  return S * Math.max(1, Math.min(blockK, Math.floor(STRIDE_CHUNK_BYTES / (4 * D) / S)));
}

/**
 * Default tile sizes under a stride: q-blocks of STRIDE_CLASS_ROWS rows per residue class
 * (S · 128 rows, at most the sequence), so a class's stride tiles run 128 gathered rows per
 * kernel call instead of blockQ / S (docs/math.md, "Cost follows the pattern"); fewer rows when a
 * q-block's partials, bounded as ⌈Sk / blockK⌉ · rows · (D + 1) · 4 bytes (engine limits.ts),
 * would pass STRIDE_MERGE_BYTES. Other specs: the defaults.
 */
export function strideBlocks(
  spec: Pick<AttentionSpec, 'pattern' | 'Sq' | 'Sk' | 'D' | 'linear'>,
  defaults: { blockQ: number; blockK: number },
): { blockQ: number; blockK: number } {
  const S = spec.pattern?.stride;
  if (!S || spec.linear) return defaults;
  const mergeRows = Math.floor(STRIDE_MERGE_BYTES / (Math.ceil(spec.Sk / defaults.blockK) * (spec.D + 1) * 4));
  return { ...defaults, blockQ: Math.max(defaults.blockQ, Math.min(spec.Sq, S * STRIDE_CLASS_ROWS, mergeRows)) };
}

/** Half the default LONGATTN_MAX_MERGE_BYTES (engine limits.ts): strideBlocks' q-blocks stay well inside it. */
const STRIDE_MERGE_BYTES = 2 ** 29;

/**
 * Rows of a plan's largest tile (what a kernel call holds, blockQ × blockK at most): blockQ, or
 * under a stride the longer of a band sub-group (STRIDE_BAND_ROWS) and a class's ⌈blockQ / S⌉ rows.
 */
export function largestTileRows(spec: Pick<AttentionSpec, 'pattern' | 'Sq' | 'linear'>, blockQ: number): number {
  const rows = Math.min(blockQ, spec.Sq);
  const S = spec.pattern?.stride;
  if (!S || spec.linear) return rows;
  return Math.min(rows, Math.max(STRIDE_BAND_ROWS, Math.ceil(rows / S)));
}

/** The spec without its stride: the rows' intervals alone (window, sinks, globals, block mask). */
export function intervalSpec(spec: AttentionSpec): AttentionSpec {
  if (!spec.pattern?.stride) return spec;
  const { stride: _, ...rest } = spec.pattern;
  return { ...spec, pattern: rest };
}

/** True when some row of the spec has intervals besides its stride keys (a window or another pattern). */
function hasIntervals(spec: AttentionSpec): boolean {
  const s = intervalSpec(spec);
  return hasPattern(s) || s.window.left !== Infinity || s.window.right !== Infinity;
}

/**
 * The tiles of row block qb of head h under a stride S (docs/math.md, "Cost follows the pattern"):
 *   - the rows' intervals, per sub-group of STRIDE_BAND_ROWS rows (rowSpan within the q-block):
 *     a window alone as the window's own tiles, else as pattern tiles of the spec without its stride;
 *   - the stride keys, per residue class: rows qStart+c, +S, … (rowSpan [c, count], rowStep S)
 *     against keys j ≡ pos(i) (mod S) (kStart, keys, keyStep S), one tile per key chunk
 *     (strideChunkKeys, keyChunk), keys in the row's intervals masked out: each visible
 *     (row, key) pair is in exactly one tile.
 * Tiles in key order of their first key (ties: as generated), kBlock their place.
 */
export function strideTiles(
  spec: AttentionSpec,
  blockK: number,
  qb: number,
  qStart: number,
  rows: number,
  head: Head,
  patternTiles: (spec: AttentionSpec, blockQ: number, blockK: number, qb: number, rows: number, head: Head) => Tile[],
): Tile[] {
  const rule = rowRule(spec, head.h);
  const S = rule.stride;
  const tiles: Tile[] = [];
  const bands = intervalSpec(spec);
  const onWindowGrid = qStart % STRIDE_BAND_ROWS === 0 && (rows % STRIDE_BAND_ROWS === 0 || qStart + rows === spec.Sq);
  if (hasIntervals(spec) && !hasPattern(bands) && onWindowGrid) {
    // A window alone: its own tiles (planner.ts: band-aligned, contiguous keys, the kernels'
    // positional rule), row block by row block of the window's plan.
    const windowPlan = plan(bands, { blockQ: STRIDE_BAND_ROWS, blockK });
    const first = (head.b * spec.H + head.h) * windowPlan.qBlocksPerHead + qStart / STRIDE_BAND_ROWS;
    for (let sub = 0; sub < rows; sub += STRIDE_BAND_ROWS) {
      for (const t of windowPlan.block(first + sub / STRIDE_BAND_ROWS).tiles) {
        tiles.push({ ...t, qBlock: qb, qStart, rows, rowSpan: [sub, t.rows] });
      }
    }
  } else if (hasIntervals(spec)) {
    for (let sub = 0; sub < rows; sub += STRIDE_BAND_ROWS) {
      const count = Math.min(STRIDE_BAND_ROWS, rows - sub);
      for (const t of patternTiles(bands, 1, blockK, qStart + sub, count, head)) {
        const [from, n] = t.rowSpan ?? [0, count];
        tiles.push({ ...t, qBlock: qb, qStart, rows, rowSpan: [sub + from, n] });
      }
    }
  }
  const chunk = strideChunkKeys(S, spec.D, blockK);
  for (let c = 0; c < Math.min(S, rows); c++) {
    const count = Math.ceil((rows - c) / S);
    const firstPos = rule.pos(qStart + c);
    const residue = ((firstPos % S) + S) % S;
    const kEnd = rule.limit(qStart + c + (count - 1) * S); // the class's last row sees the most keys
    for (let at = 0; at + residue < kEnd; at += chunk) {
      const kStart = at + residue;
      const keys = Math.ceil((Math.min(at + chunk, kEnd) - kStart) / S);
      const visible = classPairs(rule, qStart + c, count, kStart, keys);
      if (visible === 0) continue;
      tiles.push({
        ...head,
        qBlock: qb,
        qStart,
        rows,
        kBlock: 0,
        kStart,
        keys,
        full: visible === count * keys,
        flops: 4 * visible * spec.D,
        rowSpan: [c, count],
        rowStep: S,
        keyStep: S,
        keyChunk: [at, Math.min(spec.Sk, at + chunk)],
      });
    }
  }
  return tiles
    .map((t, n) => ({ t, n }))
    .sort((x, y) => x.t.kStart - y.t.kStart || x.n - y.n)
    .map(({ t }, kBlock) => ({ ...t, kBlock }));
}

/** Visible pairs of a class tile: per row, its stride keys kStart + x·S (x < keys) below limit(i), less those in its intervals. */
function classPairs(rule: RowRule, first: number, count: number, kStart: number, keys: number): number {
  const S = rule.stride;
  let pairs = 0;
  for (let r = 0; r < count; r++) {
    const i = first + r * S;
    const end = Math.min(kStart + keys * S, rule.limit(i));
    const pos = rule.pos(i);
    pairs += strideCount(pos, S, kStart, end);
    const iv = rule.rowIntervals(i);
    for (let x = 0; x < iv.length; x += 2) pairs -= strideCount(pos, S, Math.max(kStart, iv[x]!), Math.min(end, iv[x + 1]!));
  }
  return pairs;
}

/**
 * [count, keys] visibility of a stride tile (row r = qStart+from+r·rowStep, key x = kStart+x·keyStep):
 * key below the row's limit and outside its intervals (the intervals' tiles hold those pairs).
 */
export function markStrideVisible(
  spec: AttentionSpec,
  tile: Pick<Tile, 'h' | 'qStart' | 'rowSpan' | 'rowStep' | 'kStart' | 'keys' | 'keyStep'>,
  out: Uint8Array,
): Uint8Array {
  const rule = rowRule(spec, tile.h);
  const [from, count] = tile.rowSpan!;
  const step = tile.rowStep!;
  const kStep = tile.keyStep!;
  const { keys, kStart } = tile;
  const mask = out.subarray(0, count * keys);
  mask.fill(0);
  for (let r = 0; r < count; r++) {
    const i = tile.qStart + from + r * step;
    const row = r * keys;
    const end = rule.limit(i);
    for (let x = 0; x < keys && kStart + x * kStep < end; x++) mask[row + x] = 1;
    const iv = rule.rowIntervals(i);
    for (let y = 0; y < iv.length; y += 2) {
      // Stride keys inside [a, b): unmark them.
      const a = Math.max(kStart, iv[y]!);
      const b = Math.min(kStart + keys * kStep, iv[y + 1]!);
      for (let x = Math.ceil((a - kStart) / kStep); x < keys && kStart + x * kStep < b; x++) mask[row + x] = 0;
    }
  }
  return mask;
}

/** Visibility of an intervals tile of a strided spec: its rows' intervals only (stride pairs are in the stride tiles). */
export function markIntervalsVisible(
  spec: AttentionSpec,
  h: number,
  qStart: number,
  rows: number,
  spans: readonly number[],
  out: Uint8Array,
): Uint8Array {
  return markVisibleSpans(intervalSpec(spec), h, qStart, rows, spans, out);
}
