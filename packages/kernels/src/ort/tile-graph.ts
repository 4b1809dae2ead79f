import { encodeModel, float, type OnnxNode } from '../onnx/model.ts';

/** Exp's inputs are clipped to [EXP_FLOOR, 0] in masked tiles: exp(−87) = 1.6e−38 is MLAS's last normal-speed result. */
const EXP_FLOOR = -87;

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
 * Masked tiles keep the explicit form, where a row that sees no key must give o = 0, lse = −∞.
 * The mask comes in as `vis` [rows, keys] bool (true = visible) and is applied twice with Where,
 * so that no −∞ reaches Exp (docs/math.md, "Cost follows the pattern"):
 *   S = Gemm(q, k; transB, alpha = scale)
 *   m = max(ReduceMax(Where(vis, S, −∞), 1), −FLT_MAX)
 *   P = Where(vis, Exp(Clip(S − m, −87, 0)), 0), l = ReduceSum(P, 1)
 *   o = MatMul(P, v) / max(l, 1), lse = m + Log(l)
 * MLAS's Exp is ~5× slower per element on inputs below −87.3 (its result is then subnormal or
 * 0: −∞ included), and a masked tile's masked entries all were: the old additive 0/−∞ mask made
 * masked tiles cost 2–3× a mask-free tile of the same area. The clip keeps Exp's inputs in
 * [−87, 0]: a masked entry's exp is discarded by the second Where (so it is exactly 0, and a
 * masked S − m that is large, ±∞ or NaN never matters), and a visible entry's S − m is ≤ 0
 * (m is its row's visible maximum) and below −87 only where its exp(S − m) < 1.7e−38 in a row
 * whose l ≥ 1: it becomes 1.6e−38 instead, a change far below float32's resolution of l and o.
 * m = −∞ (no visible key) is clamped to −FLT_MAX: P = 0, l = 0, o = 0/1 = 0, lse = −∞. A visible
 * row has l ≥ 1 (its max term is exp(0)), so the clamps never change it.
 *
 * Inputs q [rows, D], k and v [keys, D], and when masked vis [rows, keys] (bool: a Uint8Array of 0/1).
 * `rows`/`keys` may be symbolic names (one session for every size).
 */
export function tileModel(rows: number | string, keys: number | string, D: number, scale: number, masked: boolean): Uint8Array {
  const nodes: OnnxNode[] = masked ? maskedNodes(scale) : softmaxNodes(scale);
  const inputs = [
    { name: 'q', type: 'float' as const, dims: [rows, D] },
    { name: 'k', type: 'float' as const, dims: [keys, D] },
    { name: 'v', type: 'float' as const, dims: [keys, D] },
    ...(masked ? [{ name: 'vis', type: 'bool' as const, dims: [rows, keys] }] : []),
  ];
  const initializers = [{ name: 'axes', dims: [1], data: BigInt64Array.of(1n) }, ...(masked ? maskedConstants() : [])];
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

/** The masked graphs' scalar constants. */
function maskedConstants() {
  return [
    { name: 'lowest', dims: [], data: Float32Array.of(-3.4028234663852886e38) },
    { name: 'one', dims: [], data: Float32Array.of(1) },
    { name: 'zero', dims: [], data: Float32Array.of(0) },
    { name: 'floor', dims: [], data: Float32Array.of(EXP_FLOOR) },
    { name: 'minusInf', dims: [], data: Float32Array.of(-Infinity) },
  ];
}

function maskedNodes(scale: number): OnnxNode[] {
  return [
    { op: 'Gemm', inputs: ['q', 'k'], outputs: ['s'], attrs: { transB: 1, alpha: float(scale), beta: float(1) } },
    ...maskedSoftmaxNodes(),
  ];
}

/**
 * The masked softmax of scores `s` on the `axes` axis, shared by the masked tile, the V-free tile
 * and the band tile (the same ops in the same roles, so one exactness argument covers them):
 * m = max(ReduceMax(Where(vis, s, −∞)), −FLT_MAX), P = Where(vis, Exp(Clip(s − m, −87, 0)), 0),
 * l = ReduceSum(P), o = MatMul(P, v) / max(l, 1) (not when `lseOnly`), lse = m + Log(l).
 */
function maskedSoftmaxNodes(lseOnly = false): OnnxNode[] {
  return [
    { op: 'Where', inputs: ['vis', 's', 'minusInf'], outputs: ['sv'] },
    { op: 'ReduceMax', inputs: ['sv', 'axes'], outputs: ['m0'], attrs: { keepdims: 1 } },
    { op: 'Max', inputs: ['m0', 'lowest'], outputs: ['m'] },
    { op: 'Sub', inputs: ['s', 'm'], outputs: ['d0'] },
    { op: 'Clip', inputs: ['d0', 'floor', 'zero'], outputs: ['d'] },
    { op: 'Exp', inputs: ['d'], outputs: ['e'] },
    { op: 'Where', inputs: ['vis', 'e', 'zero'], outputs: ['p'] },
    { op: 'ReduceSum', inputs: ['p', 'axes'], outputs: ['l'], attrs: { keepdims: 1 } },
    ...(lseOnly
      ? []
      : [
          { op: 'MatMul', inputs: ['p', 'v'], outputs: ['pv'] },
          { op: 'Max', inputs: ['l', 'one'], outputs: ['l1'] },
          { op: 'Div', inputs: ['pv', 'l1'], outputs: ['o'] },
        ]),
    { op: 'Log', inputs: ['l'], outputs: ['logl'] },
    { op: 'Add', inputs: ['m', 'logl'], outputs: ['lse'] },
  ];
}

/**
 * The V-free tile (TileKernel.lse: inspect's first pass) as an ONNX graph: tileModel's graphs
 * without MatMul(P, V) (and the masked one's normalising Max/Div), so no V input and no [rows, D]
 * output. Every op that forms the LSE is tileModel's, on the same inputs, so the LSE bits are `run`'s:
 *   mask-free: S = Gemm(q, k), m = ReduceMax(S, 1), lse = m − Log(ReduceMax(Softmax(S, 1), 1))
 *   masked:    m = max(ReduceMax(Where(vis, S, −∞), 1), −FLT_MAX),
 *              lse = m + Log(ReduceSum(Where(vis, Exp(Clip(S − m, −87, 0)), 0), 1))   (−∞ for a row that sees no key)
 */
export function lseModel(rows: number | string, keys: number | string, D: number, scale: number, masked: boolean): Uint8Array {
  const nodes: OnnxNode[] = masked
    ? [
        { op: 'Gemm', inputs: ['q', 'k'], outputs: ['s'], attrs: { transB: 1, alpha: float(scale), beta: float(1) } },
        ...maskedSoftmaxNodes(true),
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
        ...(masked ? [{ name: 'vis', type: 'bool' as const, dims: [rows, keys] }] : []),
      ],
      outputs: [{ name: 'lse', type: 'float', dims: [rows, 1] }],
      initializers: [
        { name: 'axes', dims: [1], data: BigInt64Array.of(1n) },
        ...(masked ? maskedConstants().filter((c) => c.name !== 'one') : []), // `one` only normalises O
      ],
    },
  });
}

/**
 * A band tile's math (docs/math.md, "Band tiles"): the masked graph above, batched over B
 * sub-blocks of r rows, each against its own K gathered keys, with one positional visibility
 * [r, K] that every sub-block shares (broadcast over B):
 *   S = MatMul(q, Transpose(k)) · scale                               [B, r, K]
 *   m = max(ReduceMax(Where(vis, S, −∞), −1), −FLT_MAX)                [B, r, 1]
 *   P = Where(vis, Exp(Clip(S − m, −87, 0)), 0), l = ReduceSum(P, −1)
 *   o = MatMul(P, v) / max(l, 1), lse = m + Log(l)                     [B, r, D], [B, r, 1]
 * The same ops in the same roles as tileModel's masked graph (its exactness argument holds row by
 * row), on the last axis. Inputs q [B, r, D], k and v [B, K, D], vis [r, K] bool; B, r and K
 * symbolic. `lseOnly`: no v, no o (lseModel's counterpart).
 */
export function bandModel(D: number, scale: number, lseOnly = false): Uint8Array {
  const nodes: OnnxNode[] = [
    { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 2, 1] } },
    { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['s0'] },
    { op: 'Mul', inputs: ['s0', 'scale'], outputs: ['s'] },
    ...maskedSoftmaxNodes(lseOnly),
  ];
  return encodeModel({
    opsets: { '': 18 },
    graph: {
      name: 'longattn_band_tile',
      nodes,
      inputs: [
        { name: 'q', type: 'float', dims: ['B', 'r', D] },
        { name: 'k', type: 'float', dims: ['B', 'K', D] },
        ...(lseOnly ? [] : [{ name: 'v', type: 'float' as const, dims: ['B', 'K', D] }]),
        { name: 'vis', type: 'bool', dims: ['r', 'K'] },
      ],
      outputs: [
        ...(lseOnly ? [] : [{ name: 'o', type: 'float' as const, dims: ['B', 'r', D] }]),
        { name: 'lse', type: 'float', dims: ['B', 'r', 1] },
      ],
      initializers: [
        { name: 'axes', dims: [1], data: BigInt64Array.of(-1n) },
        { name: 'scale', dims: [], data: Float32Array.of(scale) },
        ...maskedConstants().filter((c) => !lseOnly || c.name !== 'one'),
      ],
    },
  });
}

/**
 * A sole tile's o (docs/math.md, "Sole tiles"): onnxruntime's fused `com.microsoft`
 * MultiHeadAttention, one head, o = softmax(scale · q·kᵀ + bias)·v with MLAS's GEMMs and softmax
 * in one kernel, no LSE output. Inputs q [B, S, D], k and v [B, T, D]; with `biased`, bias
 * [1, 1, S, T] (0 where a row sees a key, −∞ where not: a band tile's positional mask, shared by
 * every sub-block). Every row must see ≥ 1 key (a row of −∞ gives NaN): the callers' tiles do.
 * The LSE, when wanted, comes from lseModel / bandModel's V-free graph, whose bits are `run`'s.
 */
export function mhaModel(D: number, scale: number, biased: boolean): Uint8Array {
  return encodeModel({
    opsets: { '': 18, 'com.microsoft': 1 },
    graph: {
      name: 'longattn_sole_tile',
      nodes: [
        {
          op: 'MultiHeadAttention',
          domain: 'com.microsoft',
          inputs: biased ? ['q', 'k', 'v', '', '', 'bias'] : ['q', 'k', 'v'],
          outputs: ['o'],
          attrs: { num_heads: 1, scale: float(scale) },
        },
      ],
      inputs: [
        { name: 'q', type: 'float', dims: ['B', 'S', D] },
        { name: 'k', type: 'float', dims: ['B', 'T', D] },
        { name: 'v', type: 'float', dims: ['B', 'T', D] },
        ...(biased ? [{ name: 'bias', type: 'float' as const, dims: [1, 1, 'S', 'T'] }] : []),
      ],
      outputs: [{ name: 'o', type: 'float', dims: ['B', 'S', D] }],
    },
  });
}
