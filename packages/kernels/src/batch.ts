/**
 * Many same-shaped tiles in one kernel call (docs/math.md, "Stride tiles on gathered rows"):
 * C tiles of R rows and K keys each, side by side, tile c's rows q[c] [R, D] against its keys
 * k[c], v[c] [K, D]. No positional rule: `full` (every pair visible) or `visible` [C, R, K]
 * (1 = visible). Padding rows and keys (zeros, never visible) make unequal tiles one shape.
 */
export interface BatchJob {
  C: number;
  R: number;
  K: number;
  D: number;
  scale: number;
  full: boolean;
  /** [C, R, K] 1 = visible, 0 = masked; required unless `full`. */
  visible?: Uint8Array;
  /** [C, R, D], [C, K, D], [C, K, D] float32, finite (checked at the boundary). */
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

/** A batch's partials: o [C, R, D] normalised over each tile's visible keys (0 where none), lse [C, R] (−∞ likewise). */
export interface BatchPartials {
  o: Float32Array;
  lse: Float32Array;
}
