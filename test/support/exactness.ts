import type { ExecutionContext } from 'ava';
import {
  exactnessBound,
  maxAbsDiff,
  naiveFloat32Attention,
  referenceAttention,
  validateSpec,
  type AttentionSpec,
} from '@longattn/attention';
import { caseShapes, type Case } from './cases.ts';
import { randomTensor } from './random.ts';

export interface Prepared {
  spec: AttentionSpec;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  ref: { out: Float64Array; lse: Float64Array };
  /** FlashAttention's rule: 2·max|naive_f32 − ref| + 1e-5. */
  bound: number;
}

const prepared = new Map<string, Prepared>();

/** Inputs, float64 reference and the exactness bound of a case (computed once per process). */
export function prepare(c: Case): Prepared {
  let p = prepared.get(c.name);
  if (!p) {
    const shapes = caseShapes(c);
    const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
    const spec = validateSpec(shapes, c.options);
    const q = randomTensor(size(shapes.q), 11);
    const k = randomTensor(size(shapes.k), 12);
    const v = randomTensor(size(shapes.v), 13);
    const ref = referenceAttention(spec, q, k, v);
    const naive = naiveFloat32Attention(spec, q, k, v);
    p = { spec, q, k, v, ref, bound: exactnessBound(naive.out, ref.out) };
    prepared.set(c.name, p);
  }
  return p;
}

/** Asserts out/lse meet the exactness rule (docs/math.md) and hold no NaN. */
export function assertExact(t: ExecutionContext, p: Prepared, out: ArrayLike<number>, lse: ArrayLike<number>): void {
  const err = maxAbsDiff(out, p.ref.out);
  t.true(err <= p.bound, `max |out − ref| = ${err} exceeds the FA bound ${p.bound}`);
  const lseErr = maxAbsDiff(lse, p.ref.lse);
  t.true(lseErr <= 1e-4, `max |lse − ref| = ${lseErr} exceeds 1e-4`);
  t.false(Array.prototype.some.call(out, Number.isNaN), 'out holds NaN');
  t.false(Array.prototype.some.call(lse, Number.isNaN), 'lse holds NaN');
}
