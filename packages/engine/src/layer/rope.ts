/**
 * Rotary position embedding in Hugging Face's `rotate_half` convention (docs/math.md, "Layers"),
 * in place on y [rows, heads·D], row r at position `start + r`:
 *   inv_freq_i = theta^(−2i/D) (i < D/2), a = p·inv_freq_i,
 *   y[i] ← y[i]·cos a − y[i + D/2]·sin a,   y[i + D/2] ← y[i + D/2]·cos a + y[i]·sin a.
 * Angles and products in float64, rounded once; cos/sin computed once per (row, i) for all heads.
 */
export function applyRope(y: Float32Array, rows: number, heads: number, D: number, start: number, theta: number): void {
  const half = D / 2;
  const inv = Float64Array.from({ length: half }, (_, i) => theta ** ((-2 * i) / D));
  const width = heads * D;
  for (let r = 0; r < rows; r++) {
    const p = start + r;
    for (let i = 0; i < half; i++) {
      const a = p * inv[i]!;
      const c = Math.cos(a);
      const s = Math.sin(a);
      for (let h = 0, at = r * width + i; h < heads; h++, at += D) {
        const x1 = y[at]!;
        const x2 = y[at + half]!;
        y[at] = x1 * c - x2 * s;
        y[at + half] = x2 * c + x1 * s;
      }
    }
  }
}
