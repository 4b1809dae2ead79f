/**
 * Whether `a` holds a NaN or ±Infinity (x − x is NaN exactly then). Kernels that cannot keep a
 * masked key's ±∞ value out of a row (0·∞ = NaN in a GEMM) check their tile with it and take an
 * exact path instead (docs/nonfinite.md). O(n), for tile-sized arrays.
 */
export function hasNonFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) {
    if (a[i]! - a[i]! !== 0) return true;
  }
  return false;
}
