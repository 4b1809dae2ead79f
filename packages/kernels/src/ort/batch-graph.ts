import { encodeModel, type OnnxNode } from '../onnx/model.ts';

/** As tile-graph.ts: Exp's inputs clipped to [EXP_FLOOR, 0] in masked tiles. */
const EXP_FLOOR = -87;

/**
 * tileModel's math (tile-graph.ts) on C tiles at once (BatchJob, ../batch.ts): inputs q [C, R, D],
 * k and v [C, K, D], and when masked vis [C, R, K] bool; outputs o [C, R, D], lse [C, R, 1].
 * The scores are a batched MatMul of q and kᵀ (Transpose to [C, D, K]) times `scale`; every
 * reduction runs over the last axis, with the same ops as tileModel's graphs:
 *   mask-free: m = ReduceMax(S), P = Softmax(S), o = P·v, lse = m − Log(ReduceMax(P))
 *   masked:    m = max(ReduceMax(Where(vis, S, −∞)), −FLT_MAX), P = Where(vis, Exp(Clip(S − m, −87, 0)), 0),
 *              o = P·v / max(l, 1), lse = m + Log(l), l = ReduceSum(P)
 * (exactness and the clip argued in tile-graph.ts). `lse`: the V-free graph (no v, no o).
 * C, R and K are symbolic: one session for every batch.
 */
export function batchModel(D: number, scale: number, masked: boolean, kind: 'tile' | 'lse' = 'tile'): Uint8Array {
  const scores: OnnxNode[] = [
    { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 2, 1] } },
    { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['qk'] },
    { op: 'Mul', inputs: ['qk', 'scale'], outputs: ['s'] },
  ];
  const body: OnnxNode[] = masked
    ? [
        { op: 'Where', inputs: ['vis', 's', 'minusInf'], outputs: ['sv'] },
        { op: 'ReduceMax', inputs: ['sv', 'axes'], outputs: ['m0'], attrs: { keepdims: 1 } },
        { op: 'Max', inputs: ['m0', 'lowest'], outputs: ['m'] },
        { op: 'Sub', inputs: ['s', 'm'], outputs: ['d0'] },
        { op: 'Clip', inputs: ['d0', 'floor', 'zero'], outputs: ['d'] },
        { op: 'Exp', inputs: ['d'], outputs: ['e'] },
        { op: 'Where', inputs: ['vis', 'e', 'zero'], outputs: ['p'] },
        { op: 'ReduceSum', inputs: ['p', 'axes'], outputs: ['l'], attrs: { keepdims: 1 } },
        { op: 'MatMul', inputs: ['p', 'v'], outputs: ['pv'] },
        { op: 'Max', inputs: ['l', 'one'], outputs: ['l1'] },
        { op: 'Div', inputs: ['pv', 'l1'], outputs: ['o'] },
        { op: 'Log', inputs: ['l'], outputs: ['logl'] },
        { op: 'Add', inputs: ['m', 'logl'], outputs: ['lse'] },
      ]
    : [
        { op: 'ReduceMax', inputs: ['s', 'axes'], outputs: ['m'], attrs: { keepdims: 1 } },
        { op: 'Softmax', inputs: ['s'], outputs: ['p'], attrs: { axis: -1 } },
        { op: 'ReduceMax', inputs: ['p', 'axes'], outputs: ['pmax'], attrs: { keepdims: 1 } },
        { op: 'MatMul', inputs: ['p', 'v'], outputs: ['o'] },
        { op: 'Log', inputs: ['pmax'], outputs: ['logp'] },
        { op: 'Sub', inputs: ['m', 'logp'], outputs: ['lse'] },
      ];
  const valueOps = new Set(['pv', 'l1', 'o']);
  const nodes = [...scores, ...(kind === 'lse' ? body.filter((n) => !valueOps.has(n.outputs[0]!)) : body)];
  const constants = [
    { name: 'axes', dims: [1], data: BigInt64Array.of(-1n) },
    { name: 'scale', dims: [], data: Float32Array.of(scale) },
    ...(masked
      ? [
          { name: 'lowest', dims: [], data: Float32Array.of(-3.4028234663852886e38) },
          ...(kind === 'lse' ? [] : [{ name: 'one', dims: [], data: Float32Array.of(1) }]),
          { name: 'zero', dims: [], data: Float32Array.of(0) },
          { name: 'floor', dims: [], data: Float32Array.of(EXP_FLOOR) },
          { name: 'minusInf', dims: [], data: Float32Array.of(-Infinity) },
        ]
      : []),
  ];
  return encodeModel({
    opsets: { '': 18 },
    graph: {
      name: kind === 'lse' ? 'longattn_lse_batch' : 'longattn_batch',
      nodes,
      inputs: [
        { name: 'q', type: 'float' as const, dims: ['C', 'R', D] },
        { name: 'k', type: 'float' as const, dims: ['C', 'K', D] },
        ...(kind === 'lse' ? [] : [{ name: 'v', type: 'float' as const, dims: ['C', 'K', D] }]),
        ...(masked ? [{ name: 'vis', type: 'bool' as const, dims: ['C', 'R', 'K'] }] : []),
      ],
      outputs: [
        ...(kind === 'lse' ? [] : [{ name: 'o', type: 'float' as const, dims: ['C', 'R', D] }]),
        { name: 'lse', type: 'float' as const, dims: ['C', 'R', 1] },
      ],
      initializers: constants,
    },
  });
}
