import { ortScoreTiles } from './ort/score-tiles.ts';

/**
 * One score tile of `longattn inspect`'s second pass (docs/math.md, "Attention patterns"): the
 * rows [rows] of a chunk against keys [keys] (column c is key `first + c` of the caller).
 */
export interface ScoreTile {
  /** [rows, D] float32. */
  q: Float32Array;
  rows: number;
  /** [keys, D] float32. */
  k: Float32Array;
  keys: number;
  /** −lse [rows] float32 (any finite value for a row whose mask row is all 0). */
  negLse: Float32Array;
  /** [rows]: pos(i) − first, so that |pos(i) − j| = |rowPos[r] − c| (integers, exact in float32 below 2²⁴). */
  rowPos: Float32Array;
  /** [rows, keys]: 1 = visible, 0 = masked (p = 0 there, whatever the score); absent = all visible. */
  mask?: Uint8Array;
  /** [groups, rows] float32 of 0/1: row groups whose column sums to form; absent (or 0 groups) = none. */
  groups?: Float32Array;
  groupCount?: number;
}

/**
 * What a score tile gives, with logp_rc = scale·q_r·k_c − lse_r and p_rc = exp(logp_rc) (0 where masked):
 * - `p` [rows, keys] float32;
 * - `plogp` [rows]: Σ_c p·logp, `pdist` [rows]: Σ_c p·|rowPos_r − c|, both over the row's visible keys;
 * - `columns` [groups, keys]: Σ_{r in group g} p_rc (when groups were given).
 * Valid until the next call.
 */
export interface ScoreSums {
  p: Float32Array;
  plogp: Float32Array | Float64Array;
  pdist: Float32Array | Float64Array;
  columns?: Float32Array | Float64Array;
}

/**
 * Score tiles (docs/math.md, "Attention patterns"): the weights of a tile and its row and column
 * reductions, so that the caller folds O(rows + keys) numbers per tile instead of every weight.
 * `ort`: MLAS's float32 GEMM, Exp and reductions in one graph (ort/score-tiles.ts), used wherever
 * onnxruntime-node loads; `js`: each logp as a float64 dot rounded once to float32, p = exp(logp)
 * in float32, sums in float64 — the fallback, and a second implementation for the tests. The
 * report's bits depend on which one ran (its name is reported).
 */
export interface ScoreTiles {
  readonly name: 'ort' | 'js';
  score(tile: ScoreTile): ScoreSums;
}

/** The fallback: float64 dot products in plain JS, rounded to float32 once; sums in float64. */
export function jsScoreTiles(D: number, scale: number): ScoreTiles {
  let p = new Float32Array(0);
  let columns = new Float64Array(0);
  const f32 = new Float32Array(1);
  return {
    name: 'js',
    score({ q, rows, k, keys, negLse, rowPos, mask, groups, groupCount = 0 }) {
      if (p.length < rows * keys) p = new Float32Array(rows * keys);
      const plogp = new Float64Array(rows);
      const pdist = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        let e = 0;
        let dist = 0;
        for (let c = 0; c < keys; c++) {
          const at = r * keys + c;
          if (mask && !mask[at]) {
            p[at] = 0;
            continue;
          }
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[r * D + d]! * k[c * D + d]!;
          f32[0] = scale * dot + negLse[r]!;
          const l = f32[0];
          f32[0] = Math.exp(l);
          p[at] = f32[0];
          e += p[at]! * l;
          dist += p[at]! * Math.abs(rowPos[r]! - c);
        }
        plogp[r] = e;
        pdist[r] = dist;
      }
      if (!groups || groupCount === 0) return { p: p.subarray(0, rows * keys), plogp, pdist };
      if (columns.length < groupCount * keys) columns = new Float64Array(groupCount * keys);
      columns.fill(0, 0, groupCount * keys);
      for (let g = 0; g < groupCount; g++)
        for (let r = 0; r < rows; r++) {
          if (!groups[g * rows + r]) continue;
          for (let c = 0; c < keys; c++) columns[g * keys + c] += p[r * keys + c]!;
        }
      return { p: p.subarray(0, rows * keys), plogp, pdist, columns: columns.subarray(0, groupCount * keys) };
    },
  };
}

/** `ort` where onnxruntime-node loads (sessions per thread and (D, scale)), else `js`. */
export function scoreTiles(D: number, scale: number): ScoreTiles {
  return ortScoreTiles(D, scale) ?? jsScoreTiles(D, scale);
}
