/**
 * Whether `a` holds a NaN or ±Infinity (x·0 is NaN exactly then). Kernels that cannot keep a
 * masked key's ±∞ value out of a row (0·∞ = NaN in a GEMM) check their tile with it and take an
 * exact path instead (docs/nonfinite.md). O(n), for tile-sized arrays.
 */
export function hasNonFinite(a: Float32Array): boolean {
  // x·0 is ±0 for finite x and NaN for NaN and ±∞, and a sum holding a NaN stays NaN (≠ 0): four
  // branch-free sums ran ~4× faster than a test per element (0.8 vs 2.9 ns per value here), which
  // counted for a pattern's many masked tiles (each scans its q, k and v).
  const n = a.length;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i]! * 0;
    s1 += a[i + 1]! * 0;
    s2 += a[i + 2]! * 0;
    s3 += a[i + 3]! * 0;
  }
  for (; i < n; i++) s0 += a[i]! * 0;
  return s0 + s1 + s2 + s3 !== 0;
}
