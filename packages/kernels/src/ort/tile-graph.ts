import { encodeModel, float, type OnnxNode } from '../onnx/model.ts';

/**
 * One tile's math as an ONNX graph of standard ops (opset 18), run by MLAS:
 *   S = Gemm(q, k; transB, alpha = scale[, C = mask, beta = 1])   [rows, keys]
 *   m = max(ReduceMax(S, 1), −FLT_MAX)                             [rows, 1]  (−FLT_MAX only when masked)
 *   P = Exp(S − m), l = ReduceSum(P, 1)
 *   o = MatMul(P, v) / max(l, 1)                                   [rows, D]
 *   lse = m + Log(l)                                               [rows, 1]
 * Inputs q [rows, D], k and v [keys, D], and when masked an additive mask [rows, keys] of 0/−∞.
 * A row that sees no key has m = −∞, clamped to −FLT_MAX so that S − m = −∞ (not NaN): P = 0,
 * l = 0, o = 0/1 = 0 and lse = −∞. A visible row has l ≥ 1 (its max term is exp(0)), so the
 * clamps never change it. `rows`/`keys` may be symbolic names (one session for every size).
 */
export function tileModel(rows: number | string, keys: number | string, D: number, scale: number, masked: boolean): Uint8Array {
  const nodes: OnnxNode[] = [
    { op: 'Gemm', inputs: masked ? ['q', 'k', 'mask'] : ['q', 'k'], outputs: ['s'], attrs: { transB: 1, alpha: float(scale), beta: float(1) } },
    { op: 'ReduceMax', inputs: ['s', 'axes'], outputs: [masked ? 'm0' : 'm'], attrs: { keepdims: 1 } },
    ...(masked ? [{ op: 'Max', inputs: ['m0', 'lowest'], outputs: ['m'] }] : []),
    { op: 'Sub', inputs: ['s', 'm'], outputs: ['d'] },
    { op: 'Exp', inputs: ['d'], outputs: ['p'] },
    { op: 'ReduceSum', inputs: ['p', 'axes'], outputs: ['l'], attrs: { keepdims: 1 } },
    { op: 'MatMul', inputs: ['p', 'v'], outputs: ['pv'] },
    ...(masked ? [{ op: 'Max', inputs: ['l', 'one'], outputs: ['l1'] }] : []),
    { op: 'Div', inputs: ['pv', masked ? 'l1' : 'l'], outputs: ['o'] },
    { op: 'Log', inputs: ['l'], outputs: ['logl'] },
    { op: 'Add', inputs: ['m', 'logl'], outputs: ['lse'] },
  ];
  const inputs = [
    { name: 'q', type: 'float' as const, dims: [rows, D] },
    { name: 'k', type: 'float' as const, dims: [keys, D] },
    { name: 'v', type: 'float' as const, dims: [keys, D] },
    ...(masked ? [{ name: 'mask', type: 'float' as const, dims: [rows, keys] }] : []),
  ];
  const initializers = [
    { name: 'axes', dims: [1], data: BigInt64Array.of(1n) },
    ...(masked ? [{ name: 'lowest', dims: [], data: Float32Array.of(-3.4028234663852886e38) }] : []),
    ...(masked ? [{ name: 'one', dims: [], data: Float32Array.of(1) }] : []),
  ];
  return encodeModel({
    opsets: { '': 18 },
    graph: {
      name: 'longattn_tile',
      nodes,
      inputs,
      outputs: [
        { name: 'o', type: 'float', dims: [rows, D] },
        { name: 'lse', type: 'float', dims: [rows, 1] },
      ],
      initializers,
    },
  });
}
