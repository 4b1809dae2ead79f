import { encodeModel, float, type OnnxNode } from '../onnx/model.ts';

/**
 * One tile's math as an ONNX graph of standard ops (opset 18), run by MLAS.
 *
 * Mask-free tiles (most of the work): MLAS's fused softmax (max, exp-and-sum, scale in three
 * passes) instead of separate ReduceMax/Sub/Exp/ReduceSum ops, ~5–8% faster per tile here:
 *   S = Gemm(q, k; transB, alpha = scale)                          [rows, keys]
 *   m = ReduceMax(S, 1), P = Softmax(S, 1)                         [rows, 1], [rows, keys]
 *   o = MatMul(P, v)                                               [rows, D]
 *   lse = m − Log(ReduceMax(P, 1))                                 [rows, 1]
 * The largest P of a row is exp(0)/l = 1/l, so m − log(max P) = m + log l. Every row sees at
 * least one key here, so l ≥ 1 and nothing is 0/0.
 *
 * Masked tiles keep the explicit form, where a row that sees no key must give o = 0, lse = −∞:
 *   S = Gemm(q, k; transB, alpha = scale, C = mask, beta = 1)
 *   m = max(ReduceMax(S, 1), −FLT_MAX), P = Exp(S − m), l = ReduceSum(P, 1)
 *   o = MatMul(P, v) / max(l, 1), lse = m + Log(l)
 * m = −∞ is clamped to −FLT_MAX so that S − m = −∞ (not NaN): P = 0, l = 0, o = 0/1 = 0 and
 * lse = −∞. A visible row has l ≥ 1 (its max term is exp(0)), so the clamps never change it.
 *
 * Inputs q [rows, D], k and v [keys, D], and when masked an additive mask [rows, keys] of 0/−∞.
 * `rows`/`keys` may be symbolic names (one session for every size).
 */
export function tileModel(rows: number | string, keys: number | string, D: number, scale: number, masked: boolean): Uint8Array {
  const nodes: OnnxNode[] = masked ? maskedNodes(scale) : softmaxNodes(scale);
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

function softmaxNodes(scale: number): OnnxNode[] {
  return [
    { op: 'Gemm', inputs: ['q', 'k'], outputs: ['s'], attrs: { transB: 1, alpha: float(scale), beta: float(1) } },
    { op: 'ReduceMax', inputs: ['s', 'axes'], outputs: ['m'], attrs: { keepdims: 1 } },
    { op: 'Softmax', inputs: ['s'], outputs: ['p'], attrs: { axis: 1 } },
    { op: 'ReduceMax', inputs: ['p', 'axes'], outputs: ['pmax'], attrs: { keepdims: 1 } },
    { op: 'MatMul', inputs: ['p', 'v'], outputs: ['o'] },
    { op: 'Log', inputs: ['pmax'], outputs: ['logp'] },
    { op: 'Sub', inputs: ['m', 'logp'], outputs: ['lse'] },
  ];
}

function maskedNodes(scale: number): OnnxNode[] {
  return [
    { op: 'Gemm', inputs: ['q', 'k', 'mask'], outputs: ['s'], attrs: { transB: 1, alpha: float(scale), beta: float(1) } },
    { op: 'ReduceMax', inputs: ['s', 'axes'], outputs: ['m0'], attrs: { keepdims: 1 } },
    { op: 'Max', inputs: ['m0', 'lowest'], outputs: ['m'] },
    { op: 'Sub', inputs: ['s', 'm'], outputs: ['d'] },
    { op: 'Exp', inputs: ['d'], outputs: ['p'] },
    { op: 'ReduceSum', inputs: ['p', 'axes'], outputs: ['l'], attrs: { keepdims: 1 } },
    { op: 'MatMul', inputs: ['p', 'v'], outputs: ['pv'] },
    { op: 'Max', inputs: ['l', 'one'], outputs: ['l1'] },
    { op: 'Div', inputs: ['pv', 'l1'], outputs: ['o'] },
    { op: 'Log', inputs: ['l'], outputs: ['logl'] },
    { op: 'Add', inputs: ['m', 'logl'], outputs: ['lse'] },
  ];
}

/**
 * The V-free tile (TileKernel.lse: inspect's first pass) as an ONNX graph: tileModel's graphs
 * without MatMul(P, V) (and the masked one's Div), so no V input and no [rows, D] output. Every
 * op that forms the LSE is tileModel's, on the same inputs, so the LSE bits are `run`'s:
 *   mask-free: S = Gemm(q, k), m = ReduceMax(S, 1), lse = m − Log(ReduceMax(Softmax(S, 1), 1))
 *   masked:    S = Gemm(q, k, C = mask), m = max(ReduceMax(S, 1), −FLT_MAX),
 *              lse = m + Log(ReduceSum(Exp(S − m), 1))   (−∞ for a row that sees no key)
 */
export function lseModel(rows: number | string, keys: number | string, D: number, scale: number, masked: boolean): Uint8Array {
  const nodes: OnnxNode[] = masked
    ? [
        { op: 'Gemm', inputs: ['q', 'k', 'mask'], outputs: ['s'], attrs: { transB: 1, alpha: float(scale), beta: float(1) } },
        { op: 'ReduceMax', inputs: ['s', 'axes'], outputs: ['m0'], attrs: { keepdims: 1 } },
        { op: 'Max', inputs: ['m0', 'lowest'], outputs: ['m'] },
        { op: 'Sub', inputs: ['s', 'm'], outputs: ['d'] },
        { op: 'Exp', inputs: ['d'], outputs: ['p'] },
        { op: 'ReduceSum', inputs: ['p', 'axes'], outputs: ['l'], attrs: { keepdims: 1 } },
        { op: 'Log', inputs: ['l'], outputs: ['logl'] },
        { op: 'Add', inputs: ['m', 'logl'], outputs: ['lse'] },
      ]
    : softmaxNodes(scale).filter((n) => n.op !== 'MatMul');
  return encodeModel({
    opsets: { '': 18 },
    graph: {
      name: 'longattn_lse_tile',
      nodes,
      inputs: [
        { name: 'q', type: 'float' as const, dims: [rows, D] },
        { name: 'k', type: 'float' as const, dims: [keys, D] },
        ...(masked ? [{ name: 'mask', type: 'float' as const, dims: [rows, keys] }] : []),
      ],
      outputs: [{ name: 'lse', type: 'float', dims: [rows, 1] }],
      initializers: [
        { name: 'axes', dims: [1], data: BigInt64Array.of(1n) },
        ...(masked ? [{ name: 'lowest', dims: [], data: Float32Array.of(-3.4028234663852886e38) }] : []),
      ],
    },
  });
}
