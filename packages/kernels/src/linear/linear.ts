/**
 * A dense projection y = x·wᵀ + b on rows of a document (docs/math.md, "Layers"):
 *   x [rows, inDim], w [outDim, inDim] (PyTorch/Hugging Face Linear layout), b [outDim] or none,
 *   y [rows, outDim], all contiguous float32.
 * One row's result never depends on the other rows given, so callers fix the row blocks and the
 * bits follow from the blocks alone, never from thread counts.
 */
export interface Linear {
  /** `ort` (onnxruntime's MLAS GEMM) or `js` (plain loops). */
  readonly name: 'ort' | 'js';
  run(x: Float32Array, rows: number, w: Float32Array, outDim: number, b?: Float32Array): Promise<Float32Array>;
  dispose?(): Promise<void>;
}

/**
 * The portable fallback: each output a float64 dot product rounded once to float32 (at least as
 * accurate as a float32 GEMM, so the layer's exactness rule holds on it too). ~1 GFLOP/s.
 */
export const jsLinear: Linear = {
  name: 'js',
  async run(x, rows, w, outDim, b) {
    const inDim = w.length / outDim;
    const y = new Float32Array(rows * outDim);
    for (let r = 0; r < rows; r++) {
      const xo = r * inDim;
      for (let o = 0; o < outDim; o++) {
        const wo = o * inDim;
        let s = 0;
        for (let c = 0; c < inDim; c++) s += x[xo + c]! * w[wo + c]!;
        y[r * outDim + o] = s + (b ? b[o]! : 0);
      }
    }
    return y;
  },
};
