import { ortScoreTiles } from './ort/score-tiles.ts';

/**
 * Score tiles of `longattn inspect`'s second pass (docs/math.md, "Attention patterns"): for q
 * [rows, D], k [keys, D] and −lse [rows] (float32), every
 *   logp_ij = scale·q_i·k_j − lse_i   and   p_ij = exp(logp_ij)      [rows, keys] float32.
 * `ort`: MLAS's float32 GEMM and Exp (ort/score-tiles.ts), used wherever onnxruntime-node loads;
 * `js`: the dot in float64, each value rounded once to float32 — the fallback, and a second
 * implementation for the tests. The report's bits depend on which one ran (its name is reported).
 */
export interface ScoreTiles {
  readonly name: 'ort' | 'js';
  /** logp and p of the tile, [rows, keys] each; valid until the next call. */
  score(q: Float32Array, rows: number, k: Float32Array, keys: number, negLse: Float32Array): { logp: Float32Array; p: Float32Array };
}

/** The fallback: float64 dot products in plain JS, rounded to float32 once. */
export function jsScoreTiles(D: number, scale: number): ScoreTiles {
  let logp = new Float32Array(0);
  let p = new Float32Array(0);
  return {
    name: 'js',
    score(q, rows, k, keys, negLse) {
      if (logp.length < rows * keys) {
        logp = new Float32Array(rows * keys);
        p = new Float32Array(rows * keys);
      }
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < keys; c++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[r * D + d]! * k[c * D + d]!;
          const l = scale * dot + negLse[r]!;
          logp[r * keys + c] = l;
          p[r * keys + c] = Math.exp(l);
        }
      }
      return { logp: logp.subarray(0, rows * keys), p: p.subarray(0, rows * keys) };
    },
  };
}

/** `ort` where onnxruntime-node loads (one session per thread and (D, scale)), else `js`. */
export function scoreTiles(D: number, scale: number): ScoreTiles {
  return ortScoreTiles(D, scale) ?? jsScoreTiles(D, scale);
}
