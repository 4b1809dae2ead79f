import { headRows } from './layout.ts';
import { keyHigh, keyLow, maskRule } from './mask.ts';
import type { AttentionSpec } from './spec.ts';

/** Any flat C-order tensor of numbers. */
export type Numbers = ArrayLike<number>;

type FloatArray = Float32Array | Float64Array;
type Round = (x: number) => number;
const exact: Round = (x) => x;

/**
 * The slow, obvious float64 reference, kept forever: every backend and engine is tested against it.
 * q: Q's layout with [B,H,Sq,D] elements; k, v: [B,Hk,Sk,D] in the same layout.
 * Returns out in Q's layout and lse [B,H,Sq] (a fully masked row: out 0, lse -Infinity).
 */
export function referenceAttention(spec: AttentionSpec, q: Numbers, k: Numbers, v: Numbers): { out: Float64Array; lse: Float64Array } {
  return allRows(spec, q, k, v, Float64Array, exact);
}

/**
 * The same triple loop with every intermediate rounded to float32: the baseline of the
 * exactness rule (max|ours − ref| ≤ 2·max|naive_f32 − ref| + 1e-5), as FlashAttention's tests do.
 */
export function naiveFloat32Attention(spec: AttentionSpec, q: Numbers, k: Numbers, v: Numbers): { out: Float32Array; lse: Float32Array } {
  return allRows(spec, q, k, v, Float32Array, Math.fround);
}

/**
 * Reference (float64) and naive float32 results for selected rows only — O(rows·Sk·D), never the
 * whole problem — so long jobs can be spot-checked. out: [rows.length, D], lse: [rows.length].
 */
export function referenceRows(
  spec: AttentionSpec,
  q: Numbers,
  k: Numbers,
  v: Numbers,
  b: number,
  h: number,
  rows: readonly number[],
): { ref: { out: Float64Array; lse: Float64Array }; naive: { out: Float32Array; lse: Float32Array } } {
  const ref = { out: new Float64Array(rows.length * spec.D), lse: new Float64Array(rows.length) };
  const naive = { out: new Float32Array(rows.length * spec.D), lse: new Float32Array(rows.length) };
  rows.forEach((i, n) => {
    ref.lse[n] = attendRow(spec, q, k, v, b, h, i, ref.out.subarray(n * spec.D, (n + 1) * spec.D), new Float64Array(spec.Sk), exact);
    naive.lse[n] = attendRow(
      spec,
      q,
      k,
      v,
      b,
      h,
      i,
      naive.out.subarray(n * spec.D, (n + 1) * spec.D),
      new Float32Array(spec.Sk),
      Math.fround,
    );
  });
  return { ref, naive };
}

function allRows<T extends FloatArray>(
  spec: AttentionSpec,
  q: Numbers,
  k: Numbers,
  v: Numbers,
  Arr: { new (n: number): T },
  round: Round,
): { out: T; lse: T } {
  const { B, H, Sq, D, layout } = spec;
  const out = new Arr(B * H * Sq * D);
  const lse = new Arr(B * H * Sq);
  const scores = new Arr(spec.Sk);
  const row = new Arr(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const qr = headRows(layout, b, h, H, Sq, D);
      for (let i = 0; i < Sq; i++) {
        lse[(b * H + h) * Sq + i] = attendRow(spec, q, k, v, b, h, i, row, scores, round);
        out.set(row, qr.first + i * qr.stride);
      }
    }
  }
  return { out, lse };
}

/**
 * Row i of query head (b, h): writes the output row into `row` [D] and returns its lse.
 * Every intermediate goes through `round` (identity for float64, Math.fround for float32).
 */
function attendRow(
  spec: AttentionSpec,
  q: Numbers,
  k: Numbers,
  v: Numbers,
  b: number,
  h: number,
  i: number,
  row: FloatArray,
  scores: FloatArray,
  round: Round,
): number {
  const { H, Hk, Sq, Sk, D, layout } = spec;
  const rule = maskRule(spec);
  const scale = round(spec.scale);
  const qr = headRows(layout, b, h, H, Sq, D);
  const kr = headRows(layout, b, Math.floor(h / (H / Hk)), Hk, Sk, D);
  const lo = Math.max(0, keyLow(rule, i));
  const hi = Math.min(Sk - 1, keyHigh(rule, i));
  row.fill(0);
  if (hi < lo) return -Infinity; // fully masked row: out 0, lse -Infinity
  const qBase = qr.first + i * qr.stride;
  let m = -Infinity;
  for (let j = lo; j <= hi; j++) {
    let s = 0;
    const kBase = kr.first + j * kr.stride;
    for (let d = 0; d < D; d++) s = round(s + round(q[qBase + d]! * k[kBase + d]!));
    s = round(s * scale);
    scores[j] = s;
    if (s > m) m = s;
  }
  // Every visible score −∞ (non-finite inputs, docs/nonfinite.md): max at the lowest finite float,
  // so p = 0, Z = 0, O = Σ 0·v undivided and lse = −∞, not exp(−∞ + ∞) = NaN.
  if (m === -Infinity) m = -3.4028234663852886e38;
  let z = 0;
  for (let j = lo; j <= hi; j++) {
    const p = round(Math.exp(scores[j]! - m));
    scores[j] = p;
    z = round(z + p);
  }
  for (let j = lo; j <= hi; j++) {
    const p = scores[j]!;
    const vBase = kr.first + j * kr.stride;
    for (let d = 0; d < D; d++) row[d] = round(row[d]! + round(p * v[vBase + d]!));
  }
  if (z !== 0) for (let d = 0; d < D; d++) row[d] = round(row[d]! / z);
  return round(m + Math.log(z));
}
