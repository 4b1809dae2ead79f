import { bruteAttention, type BruteSpec } from './reference64.ts';

/**
 * One attention layer written from its definition (docs/contracts.md, "Document layers") and
 * nothing else from longattn, in float64 (`round` = identity) or with every step rounded to
 * float32 (`round` = Math.fround: the naive Y32 of the layer's exactness rule). X [B, S, dModel],
 * Xkv [B, Skv, dKv]; weights in Hugging Face's [out, in] layout. Attention by bruteAttention (bshd).
 * Returns y [B, S, outDim], o [B, S, H, D] and lse [B, H, S].
 */
export interface LayerWeights64 {
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo?: Float32Array;
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  bo?: Float32Array;
}

export interface Layer64Spec extends Omit<BruteSpec, 'layout' | 'Sq' | 'Sk' | 'D'> {
  S: number;
  Skv: number;
  dModel: number;
  dKv: number;
  D: number;
  /** RoPE base; absent: no RoPE. */
  theta?: number;
}

/** x [rows, in]·wᵀ [in, out] + b, each product and sum rounded by `round`. */
function linear(
  x: ArrayLike<number>,
  rows: number,
  inDim: number,
  w: ArrayLike<number>,
  outDim: number,
  b: ArrayLike<number> | undefined,
  round: (x: number) => number,
): Float64Array {
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let s = 0;
      for (let c = 0; c < inDim; c++) s = round(s + round(x[r * inDim + c]! * w[o * inDim + c]!));
      y[r * outDim + o] = b ? round(s + b[o]!) : s;
    }
  }
  return y;
}

/** RoPE (rotate_half): pairs (d, d + D/2) of each head rotated by p·theta^(−2d/D), p = row's position in its sequence. */
function rope(y: Float64Array, B: number, S: number, heads: number, D: number, theta: number, round: (x: number) => number): void {
  const half = D / 2;
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < S; p++) {
      for (let h = 0; h < heads; h++) {
        const base = ((b * S + p) * heads + h) * D;
        for (let d = 0; d < half; d++) {
          const angle = round(p * round(1 / theta ** ((2 * d) / D)));
          const c = round(Math.cos(angle));
          const s = round(Math.sin(angle));
          const x1 = y[base + d]!;
          const x2 = y[base + d + half]!;
          y[base + d] = round(round(x1 * c) - round(x2 * s));
          y[base + d + half] = round(round(x2 * c) + round(x1 * s));
        }
      }
    }
  }
}

export function layerReference(
  spec: Layer64Spec,
  x: Float32Array,
  xKv: Float32Array,
  w: LayerWeights64,
  round: (x: number) => number = (v) => v,
): { y: Float64Array; o: Float64Array; lse: Float64Array } {
  const { B, S, Skv, H, Hk, D, dModel, dKv } = spec;
  const q = linear(x, B * S, dModel, w.wq, H * D, w.bq, round);
  const k = linear(xKv, B * Skv, dKv, w.wk, Hk * D, w.bk, round);
  const v = linear(xKv, B * Skv, dKv, w.wv, Hk * D, w.bv, round);
  if (spec.theta !== undefined) {
    rope(q, B, S, H, D, spec.theta, round);
    rope(k, B, Skv, Hk, D, spec.theta, round);
  }
  const { theta: _, S: __, Skv: ___, dModel: ____, dKv: _____, ...attention } = spec;
  const { out: o, lse } = bruteAttention({ ...attention, layout: 'bshd', Sq: S, Sk: Skv, D }, q, k, v, round);
  const y = w.wo ? linear(o, B * S, H * D, w.wo, dModel, w.bo, round) : o;
  return { y, o, lse };
}
