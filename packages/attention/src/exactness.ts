import type { Numbers } from './reference.ts';

/** max |a − b| over finite pairs; a pair with one side non-finite counts as Infinity unless both are equal. */
export function maxAbsDiff(a: Numbers, b: Numbers): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths ${a.length} and ${b.length} differ`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    const d = Math.abs(x - y);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/**
 * FlashAttention's exactness rule (docs/math.md): ours may be at most twice as far from the float64
 * reference as a naive float32 implementation is, plus 1e-5 of slack for near-zero baselines.
 */
export function exactnessBound(naiveF32: Numbers, reference: Numbers): number {
  return 2 * maxAbsDiff(naiveF32, reference) + 1e-5;
}
