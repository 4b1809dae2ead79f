import { keyHigh, keyLow, maskRule, type AttentionSpec } from '@longattn/attention';
import type { BlockSource } from '../block-source.ts';
import { CHUNK_KEYS, cellOf, type InspectSettings } from './settings.ts';

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
 * What one chunk contributes, all in float64 (weights in float32):
 * - `entropy`, `distance`, `sink`, `local` [rows]: the row's −Σ p log p, Σ p·|pos(i) − j|, Σ_{j<N} p,
 *   Σ_{|pos(i)−j|≤W} p; NaN for a row that sees no key (it is not counted).
 * - `received` [Sk]: Σ over the chunk's rows of p_ij, in row order (when settings.received).
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
}

/**
 * The second pass over one chunk: p_ij = exp(s·q_i·k_j − lse_i) for every key the row sees, with
 * the score computed in float64 from the float32 inputs (the definition, not a kernel's float32
 * rounding), lse_i from the first pass (`lse` [rows], -Infinity: the row sees no key). log p is
 * taken as s·q·k − lse, so a p that underflows to 0 adds exactly 0 to the entropy.
 * Keys are visited in blocks of CHUNK_KEYS, every row of the chunk meeting a block before the next:
 * each row's sums run over keys in order, and each key's `received` over rows in order.
 */
export function inspectChunk(
  spec: AttentionSpec,
  settings: InspectSettings,
  source: BlockSource,
  chunk: ChunkRef,
  lse: Float32Array,
): ChunkResult {
  const { D, Sq, Sk, scale } = spec;
  const { rows, rowStart } = chunk;
  const rule = maskRule(spec);
  const kvh = Math.floor(chunk.h / (spec.H / spec.Hk));
  const q = Float64Array.from(source.queries(chunk.b, chunk.h, rowStart, rows));
  const entropy = new Float64Array(rows);
  const distance = new Float64Array(rows);
  const sink = new Float64Array(rows);
  const local = new Float64Array(rows);
  const lo = new Int32Array(rows);
  const hi = new Int32Array(rows);
  let kFirst = Sk;
  let kLast = -1;
  for (let r = 0; r < rows; r++) {
    const i = rowStart + r;
    lo[r] = Math.max(0, keyLow(rule, i));
    hi[r] = Math.min(Sk - 1, keyHigh(rule, i));
    if (lse[r] === -Infinity || lo[r]! > hi[r]!) {
      hi[r] = -1; // sees no key
      entropy[r] = distance[r] = sink[r] = local[r] = NaN;
      continue;
    }
    kFirst = Math.min(kFirst, lo[r]!);
    kLast = Math.max(kLast, hi[r]!);
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
  const shift = Sk - Sq;
  for (let kStart = kFirst; kStart <= kLast; kStart += CHUNK_KEYS) {
    const keys = Math.min(CHUNK_KEYS, kLast + 1 - kStart);
    const k = source.keys(chunk.b, kvh, kStart, keys);
    const kEnd = kStart + keys - 1;
    for (let r = 0; r < rows; r++) {
      const from = Math.max(lo[r]!, kStart);
      const to = Math.min(hi[r]!, kEnd);
      if (from > to) continue;
      const l = lse[r]!;
      const pos = rowStart + r + shift;
      const qo = r * D;
      const t = r - trackFrom;
      const isTracked = t >= 0 && t < tracked;
      const cellBase = cells ? (cellOf(rowStart + r, Sq, mapRows) - cellRowStart) * mapCols : 0;
      let e = entropy[r]!;
      let dist = distance[r]!;
      let sk = sink[r]!;
      let lc = local[r]!;
      for (let j = from; j <= to; j++) {
        const ko = (j - kStart) * D;
        // Four partial sums, in a fixed order (the bits never depend on who runs the chunk): the pass at
        // n = 4096, 8 heads, D = 64, causal took 17.0 s instead of 20.4 s here (loaded machine).
        let d0 = 0;
        let d1 = 0;
        let d2 = 0;
        let d3 = 0;
        let d = 0;
        for (; d + 3 < D; d += 4) {
          d0 += q[qo + d]! * k[ko + d]!;
          d1 += q[qo + d + 1]! * k[ko + d + 1]!;
          d2 += q[qo + d + 2]! * k[ko + d + 2]!;
          d3 += q[qo + d + 3]! * k[ko + d + 3]!;
        }
        for (; d < D; d++) d0 += q[qo + d]! * k[ko + d]!;
        const logp = scale * (d0 + d1 + (d2 + d3)) - l;
        const p = Math.exp(logp);
        e -= p * logp;
        const gap = pos > j ? pos - j : j - pos;
        dist += p * gap;
        if (j < settings.sinks) sk += p;
        if (gap <= settings.local) lc += p;
        if (received) received[j] += p;
        if (cells) cells[cellBase + colOf![j]!] += p;
        if (isTracked) {
          if (weights) weights[t * Sk + j] = p;
          insertTop(topP, topJ, t * K, K, p, j);
        }
      }
      entropy[r] = e;
      distance[r] = dist;
      sink[r] = sk;
      local[r] = lc;
    }
  }
  const top: TopRow[] = [];
  for (let t = 0; t < tracked; t++) {
    const r = trackFrom + t;
    const seen = hi[r] !== -1;
    const keys: [number, number][] = [];
    for (let s = 0; seen && s < K && topJ[t * K + s]! >= 0; s++) keys.push([topJ[t * K + s]!, topP[t * K + s]!]);
    top.push({ row: rowStart + r, lse: seen ? lse[r]! : null, keys });
  }
  return {
    entropy,
    distance,
    sink,
    local,
    ...(received ? { received } : {}),
    cellRowStart,
    ...(cells ? { cells } : {}),
    top,
    ...(weights ? { weights } : {}),
  };
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
