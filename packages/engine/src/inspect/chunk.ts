import { markVisible, rowRule, rowVisibleCount, rowVisibleSpan, type AttentionSpec } from '@longattn/attention';
import { scoreTiles, type ScoreTiles } from '@longattn/kernels';
import type { BlockSource } from '../block-source.ts';
import { CHUNK_KEYS, TILE_ROWS, cellOf, type InspectSettings } from './settings.ts';

/** One chunk: rows [rowStart, rowStart + rows) of query head h in batch b. */
export interface ChunkRef {
  b: number;
  h: number;
  rowStart: number;
  rows: number;
}

/** The top-k list of one row (docs/contracts.md): lse null and keys [] when the row sees no key. */
export interface TopRow {
  row: number;
  lse: number | null;
  keys: [number, number][];
}

/**
 * What one chunk contributes, all in float64 (weights, like the p they hold, in float32):
 * - `entropy`, `distance`, `sink`, `local` [rows]: the row's −Σ p log p, Σ p·|pos(i) − j|, Σ_{j<N} p,
 *   Σ_{|pos(i)−j|≤W} p; NaN for a row that sees no key (it is not counted).
 * - `received` [Sk]: Σ over the chunk's rows of p_ij, the tiles' column sums in key-block, row-tile
 *   and group order (when settings.received).
 * - `cells` [(cellRowEnd − cellRowStart) × mapCols]: Σ p per map cell touched by the chunk's rows.
 * - `top`, `weights` [(rows of A:B in the chunk) × Sk]: for the chunk's rows inside --rows A:B.
 */
export interface ChunkResult {
  entropy: Float64Array;
  distance: Float64Array;
  sink: Float64Array;
  local: Float64Array;
  received?: Float64Array;
  cellRowStart: number;
  cells?: Float64Array;
  top: TopRow[];
  weights?: Float32Array;
  /** Which score tiles ran (`ort` or `js`, kernels/src/score-tiles.ts): the bits depend on it. */
  scores?: ScoreTiles['name'];
}

/**
 * The second pass over one chunk (docs/math.md, "Attention patterns"). Key blocks of CHUNK_KEYS in
 * order; in each, the chunk's rows TILE_ROWS at a time: one score tile (`tiles`, default ORT's
 * float32 GEMM, Exp and reductions where it loads) over the rectangle of keys those rows see gives
 * p_ij = exp(s·q_i·k_j − lse_i) with the masked pairs at 0, each row's Σ p·logp and Σ p·|pos(i) − j|,
 * and the column sums Σ p per group of rows (one group for `received`; the tile's map rows with a
 * map). Those partials are folded in float64 in a fixed order (tiles of a row in key order, groups
 * in row order), and the few weights the sink and local shares, the top-k and the weight rows need
 * are read from p. So the bits depend only on the chunk and the score tiles, never on who runs it.
 * A tile whose partials are not finite (NaN/±∞ inputs) takes its column sums from the visible p
 * one by one instead, so that a non-finite weight touches only its own key and cell.
 * The visible set is the spec's mask rule with its patterns (rowRule: window, sinks, globals,
 * block mask, stride; causal intersected), as in the first pass. `lse` [rows]: -Infinity = the
 * row sees no key (its statistics are NaN: not counted). A p that underflows to 0 adds 0.
 */
export function inspectChunk(
  spec: AttentionSpec,
  settings: InspectSettings,
  source: BlockSource,
  chunk: ChunkRef,
  lse: Float32Array,
  tiles: ScoreTiles = scoreTiles(spec.D, spec.scale),
): ChunkResult {
  const { D, Sq, Sk } = spec;
  const { rows, rowStart } = chunk;
  const rule = rowRule(spec, chunk.h);
  const kvh = Math.floor(chunk.h / (spec.H / spec.Hk));
  const q = source.queries(chunk.b, chunk.h, rowStart, rows).slice(0, rows * D);
  const acc = new RowSums(rows);
  const intervals: number[][] = [];
  const seen = new Uint8Array(rows);
  const negLse = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const iv = rule.rowIntervals(rowStart + r);
    intervals.push(iv);
    if (lse[r] === -Infinity || rowVisibleCount(rule, rowStart + r, iv, 0, Sk) === 0) {
      acc.entropy[r] = acc.distance[r] = acc.sink[r] = acc.local[r] = NaN;
      continue;
    }
    seen[r] = 1;
    negLse[r] = -lse[r]!;
  }
  const received = settings.received ? new Float64Array(Sk) : undefined;
  const { mapRows, mapCols } = settings;
  const cellRowStart = mapRows ? cellOf(rowStart, Sq, mapRows) : 0;
  const cells = mapRows ? new Float64Array((cellOf(rowStart + rows - 1, Sq, mapRows) - cellRowStart + 1) * mapCols) : undefined;
  const colOf = mapRows ? Int32Array.from({ length: Sk }, (_, j) => cellOf(j, Sk, mapCols)) : undefined;
  const tracked = Math.max(0, Math.min(rowStart + rows, settings.rowsTo) - Math.max(rowStart, settings.rowsFrom));
  const trackFrom = Math.max(rowStart, settings.rowsFrom) - rowStart;
  const weights = settings.weights && tracked > 0 ? new Float32Array(tracked * Sk) : undefined;
  const K = settings.topK;
  const topP = new Float64Array(tracked * K).fill(-1);
  const topJ = new Int32Array(tracked * K).fill(-1);
  let mask: Uint8Array | undefined; // [tile rows, width], made for the first tile that needs one
  const rowPos = new Float32Array(TILE_ROWS);
  const groups = received || cells ? new Float32Array(TILE_ROWS * TILE_ROWS) : undefined;
  const segments: number[] = [];
  for (let kStart = 0; kStart < Sk; kStart += CHUNK_KEYS) {
    const kEnd = Math.min(Sk, kStart + CHUNK_KEYS);
    let k: Float32Array | undefined;
    for (let r0 = 0; r0 < rows; r0 += TILE_ROWS) {
      const tileRows = Math.min(TILE_ROWS, rows - r0);
      let first = Infinity;
      let last = -Infinity;
      for (let r = r0; r < r0 + tileRows; r++) {
        if (!seen[r]) continue;
        const [a, b] = rowVisibleSpan(rule, rowStart + r, intervals[r]!, kStart, kEnd);
        first = Math.min(first, a);
        last = Math.max(last, b);
      }
      if (first > last) continue;
      k ??= source.keys(chunk.b, kvh, kStart, kEnd - kStart);
      const width = last - first + 1;
      let full = !rule.stride;
      for (let r = r0; full && r < r0 + tileRows; r++) {
        if (!seen[r]) full = false;
        else {
          clipIntervals(intervals[r]!, first, last + 1, segments);
          full = segments.length === 2 && segments[0] === first && segments[1] === last + 1;
        }
      }
      if (!full) {
        mask ??= new Uint8Array(TILE_ROWS * CHUNK_KEYS);
        markVisible(spec, chunk.h, rowStart + r0, tileRows, first, width, mask);
        for (let r = r0; r < r0 + tileRows; r++) if (!seen[r]) mask.fill(0, (r - r0) * width, (r - r0 + 1) * width);
      }
      for (let r = 0; r < tileRows; r++) rowPos[r] = rowStart + r0 + r + Sk - Sq - first;
      // Column groups: the tile's map rows (each row in its cell's group), or all rows as one.
      const group0 = cells ? cellOf(rowStart + r0, Sq, mapRows) : 0;
      const groupCount = cells ? cellOf(rowStart + r0 + tileRows - 1, Sq, mapRows) - group0 + 1 : groups ? 1 : 0;
      if (groups) {
        groups.fill(0, 0, groupCount * tileRows);
        for (let r = 0; r < tileRows; r++) groups[((cells ? cellOf(rowStart + r0 + r, Sq, mapRows) : 0) - group0) * tileRows + r] = 1;
      }
      const sums = tiles.score({
        q: q.subarray(r0 * D),
        rows: tileRows,
        k: k.subarray((first - kStart) * D),
        keys: width,
        negLse: negLse.subarray(r0),
        rowPos,
        ...(full ? {} : { mask }),
        ...(groups ? { groups, groupCount } : {}),
      });
      const { p } = sums;
      let finite = true;
      for (let r = r0; r < r0 + tileRows; r++) {
        if (!seen[r]) continue;
        const e = sums.plogp[r - r0]!;
        const dist = sums.pdist[r - r0]!;
        acc.entropy[r] -= e;
        acc.distance[r] += dist;
        if (!Number.isFinite(e) || !Number.isFinite(dist)) finite = false;
      }
      if (finite && sums.columns) {
        const columns = sums.columns;
        for (let g = 0; g < groupCount; g++) {
          const at = g * width - first; // columns[at + j] is key j's sum
          if (received) for (let j = first; j <= last; j++) received[j] += columns[at + j]!;
          if (cells) {
            const cellBase = (group0 + g - cellRowStart) * mapCols;
            for (let j = first; j <= last; j++) cells[cellBase + colOf![j]!] += columns[at + j]!;
          }
        }
      }
      const perKey = !finite && groups !== undefined;
      for (let r = r0; r < r0 + tileRows; r++) {
        if (!seen[r]) continue;
        const i = rowStart + r;
        const pos = i + Sk - Sq;
        const t = r - trackFrom;
        const isTracked = t >= 0 && t < tracked;
        const nearSinks = first < settings.sinks;
        const nearLocal = pos - settings.local <= last && pos + settings.local >= first;
        if (!(isTracked || nearSinks || nearLocal || perKey)) continue;
        const o = (r - r0) * width - first; // p[o + j] is key j's weight
        if (full) segments.splice(0, segments.length, first, last + 1);
        else maskRuns(mask!, (r - r0) * width, width, first, segments);
        const cellBase = cells ? (cellOf(i, Sq, mapRows) - cellRowStart) * mapCols : 0;
        for (let x = 0; x < segments.length; x += 2) {
          const a = segments[x]!;
          const b = segments[x + 1]!;
          acc.add(r, pos, settings, p, o, a, b);
          if (perKey && received) for (let j = a; j < b; j++) received[j] += p[o + j]!;
          if (perKey && cells) for (let j = a; j < b; j++) cells[cellBase + colOf![j]!] += p[o + j]!;
          if (isTracked) {
            for (let j = a; j < b; j++) {
              if (weights) weights[t * Sk + j] = p[o + j]!;
              insertTop(topP, topJ, t * K, K, p[o + j]!, j);
            }
          }
        }
      }
    }
  }
  const top: TopRow[] = [];
  for (let t = 0; t < tracked; t++) {
    const r = trackFrom + t;
    const keys: [number, number][] = [];
    for (let s = 0; seen[r] && s < K && topJ[t * K + s]! >= 0; s++) keys.push([topJ[t * K + s]!, topP[t * K + s]!]);
    top.push({ row: rowStart + r, lse: seen[r] ? lse[r]! : null, keys });
  }
  return {
    entropy: acc.entropy,
    distance: acc.distance,
    sink: acc.sink,
    local: acc.local,
    ...(received ? { received } : {}),
    cellRowStart,
    ...(cells ? { cells } : {}),
    top,
    ...(weights ? { weights } : {}),
    scores: tiles.name,
  };
}

/** Each row's four float64 sums over its visible keys (entropy and distance from the tiles' row sums). */
class RowSums {
  readonly entropy: Float64Array;
  readonly distance: Float64Array;
  readonly sink: Float64Array;
  readonly local: Float64Array;

  constructor(rows: number) {
    this.entropy = new Float64Array(rows);
    this.distance = new Float64Array(rows);
    this.sink = new Float64Array(rows);
    this.local = new Float64Array(rows);
  }

  /** Adds keys [a, b) of row r (at key position `pos`), their p at [o + j], to its sink (j < sinks) and local (|pos − j| ≤ local) sums. */
  add(r: number, pos: number, settings: InspectSettings, p: Float32Array, o: number, a: number, b: number): void {
    let sk = this.sink[r]!;
    for (let j = a, end = Math.min(b, settings.sinks); j < end; j++) sk += p[o + j]!;
    this.sink[r] = sk;
    let lc = this.local[r]!;
    for (let j = Math.max(a, pos - settings.local), end = Math.min(b, pos + settings.local + 1); j < end; j++) lc += p[o + j]!;
    this.local[r] = lc;
  }
}

/** The row's intervals (flat [a, b) pairs, sorted) clipped to [from, to), into `out`. */
function clipIntervals(intervals: number[], from: number, to: number, out: number[]): void {
  out.length = 0;
  for (let x = 0; x < intervals.length; x += 2) {
    const a = Math.max(from, intervals[x]!);
    const b = Math.min(to, intervals[x + 1]!);
    if (b > a) out.push(a, b);
  }
}

/** The runs of 1s in mask[at … at + width) as key intervals [first + a, first + b), into `out`. */
function maskRuns(mask: Uint8Array, at: number, width: number, first: number, out: number[]): void {
  out.length = 0;
  for (let c = 0; c < width; c++) {
    if (!mask[at + c]) continue;
    const a = c;
    while (c < width && mask[at + c]) c++;
    out.push(first + a, first + c);
  }
}

/**
 * Keeps the K largest p of a row, sorted by p descending; keys arrive in increasing j, so a p equal
 * to one already kept goes after it (ties to the lower j).
 */
function insertTop(topP: Float64Array, topJ: Int32Array, base: number, K: number, p: number, j: number): void {
  if (K === 0 || !(p > topP[base + K - 1]! || topJ[base + K - 1]! < 0)) return;
  let s = base + K - 1;
  while (s > base && (topJ[s - 1]! < 0 || topP[s - 1]! < p)) {
    topP[s] = topP[s - 1]!;
    topJ[s] = topJ[s - 1]!;
    s--;
  }
  topP[s] = p;
  topJ[s] = j;
}
