import { InputError, validateSpec, type AttentionSpec } from '@longattn/attention';
import { openTensors, safetensorsNames, type TensorReader } from '@longattn/tensor';
import type { LayerRequest } from './request.ts';

/** The layer's tensors under the prefix (Hugging Face names); the o_proj and every bias are optional. */
export interface LayerWeights {
  wq: TensorReader;
  wk: TensorReader;
  wv: TensorReader;
  wo?: TensorReader;
  bq?: TensorReader;
  bk?: TensorReader;
  bv?: TensorReader;
  bo?: TensorReader;
}

/**
 * A layer's validated inputs: open readers (headers only), its sizes and the attention spec of
 * the Q, K, V it makes — bhsd, q [B, H, S, D], k and v [B, Hk, Skv, D] (X's batch dim dropped
 * as X's is): K and V are projected into files of that layout, so a tile's keys are one read.
 */
export interface LayerInputs {
  spec: AttentionSpec;
  x: TensorReader;
  /** X itself for self-attention. */
  xKv: TensorReader;
  weights: LayerWeights;
  /** X has a batch dim ([B, S, d_model]). */
  batched: boolean;
  dModel: number;
  /** Y's last dim: o_proj's rows, or H·D without it. */
  outDim: number;
  /** RoPE base, or undefined when RoPE is off (--no-rope, cross-attention). */
  ropeTheta: number | undefined;
  close(): void;
}

const NAMES = ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const;

function checkHeads(value: number, argument: string): void {
  if (!Number.isInteger(value) || value < 1) throw new InputError(argument, `expected an integer ≥ 1, got ${value}`);
}

/** [B, S, d] of a rank-2 or rank-3 X. */
function rows(t: TensorReader, argument: string): { B: number; S: number; d: number } {
  const s = t.shape;
  if (s.length !== 2 && s.length !== 3) throw new InputError(argument, `expected [S, d_model] or [B, S, d_model], got [${s.join(', ')}]`);
  const [B, S, d] = s.length === 2 ? [1, s[0]!, s[1]!] : [s[0]!, s[1]!, s[2]!];
  if (B < 1 || S < 1 || d < 1) throw new InputError(argument, `every dim must be ≥ 1, got [${s.join(', ')}]`);
  return { B, S, d };
}

/**
 * Opens X (and --x-kv) and the layer's weights and checks them against each other, at the
 * boundary (docs/contracts.md, "Document layers"): a missing tensor, a weight whose shape
 * disagrees with --heads / --kv-heads or with X's d_model, a bias of the wrong length → InputError
 * naming the tensor. Values must be finite unless allowNonfinite. Nothing is left open on failure.
 */
export function openLayerInputs(request: LayerRequest): LayerInputs {
  const H = request.heads;
  const Hk = request.kvHeads ?? H;
  checkHeads(H, '--heads');
  checkHeads(Hk, '--kv-heads');
  if (H % Hk !== 0) throw new InputError('--kv-heads', `--heads ${H} is not a multiple of --kv-heads ${Hk} (GQA needs H % Hk == 0)`);
  const prefix = request.prefix ?? '';
  const present = new Set(safetensorsNames(request.weights, '--weights'));
  const refs: { ref: string; argument: string }[] = [{ ref: request.x, argument: '--x' }];
  if (request.xKv !== undefined) refs.push({ ref: request.xKv, argument: '--x-kv' });
  const named: string[] = [];
  for (const base of NAMES) {
    for (const part of ['weight', 'bias']) {
      const name = `${prefix}${base}.${part}`;
      const required = part === 'weight' && base !== 'o_proj';
      if (!present.has(name)) {
        if (required)
          throw new InputError('--weights', `no tensor "${name}" in ${request.weights}${prefix ? '' : ' (is --prefix missing?)'}`);
        continue;
      }
      refs.push({ ref: `${request.weights}#${name}`, argument: '--weights' });
      named.push(`${base}.${part}`);
    }
  }
  const opened = openTensors(refs);
  try {
    const x = opened[0]!;
    const xKv = request.xKv !== undefined ? opened[1]! : x;
    const byName = new Map(named.map((n, i) => [n, opened[i + (request.xKv !== undefined ? 2 : 1)]!]));
    const weights: LayerWeights = {
      wq: byName.get('q_proj.weight')!,
      wk: byName.get('k_proj.weight')!,
      wv: byName.get('v_proj.weight')!,
      ...optional('wo', byName.get('o_proj.weight')),
      ...optional('bq', byName.get('q_proj.bias')),
      ...optional('bk', byName.get('k_proj.bias')),
      ...optional('bv', byName.get('v_proj.bias')),
      ...optional('bo', byName.get('o_proj.bias')),
    };
    const xs = rows(x, '--x');
    const kvs = request.xKv !== undefined ? rows(xKv, '--x-kv') : xs;
    if (xKv.shape.length !== x.shape.length)
      throw new InputError('--x-kv', `rank ${xKv.shape.length} differs from --x's rank ${x.shape.length}`);
    if (kvs.B !== xs.B) throw new InputError('--x-kv', `batch ${kvs.B} differs from --x's batch ${xs.B}`);
    const tensor = (n: string) => `"${prefix}${n}"`;
    const matrix = (t: TensorReader, n: string, heads: number | undefined, cols: number, colsWhat: string) => {
      const s = t.shape;
      if (s.length !== 2) throw new InputError('--weights', `${tensor(n)} is [${s.join(', ')}]; expected a matrix [out, in]`);
      if (heads !== undefined && (s[0]! % heads !== 0 || s[0] === 0))
        throw new InputError('--weights', `${tensor(n)} has ${s[0]} rows, not a positive multiple of ${heads} heads`);
      if (s[1] !== cols) throw new InputError('--weights', `${tensor(n)} has ${s[1]} columns; ${colsWhat} is ${cols}`);
      return s[0]!;
    };
    const D = matrix(weights.wq, 'q_proj.weight', H, xs.d, "--x's d_model") / H;
    for (const [t, n] of [
      [weights.wk, 'k_proj.weight'],
      [weights.wv, 'v_proj.weight'],
    ] as const) {
      const r = matrix(t, n, Hk, kvs.d, request.xKv !== undefined ? "--x-kv's d_model" : "--x's d_model");
      if (r !== Hk * D)
        throw new InputError('--weights', `${tensor(n)} has ${r} rows; --kv-heads ${Hk} × D ${D} (from q_proj) is ${Hk * D}`);
    }
    if (weights.wo) {
      matrix(weights.wo, 'o_proj.weight', undefined, H * D, 'H·D');
      if (weights.wo.shape[0] !== xs.d)
        throw new InputError('--weights', `${tensor('o_proj.weight')} has ${weights.wo.shape[0]} rows; --x's d_model is ${xs.d}`);
    }
    for (const [t, n, length] of [
      [weights.bq, 'q_proj.bias', H * D],
      [weights.bk, 'k_proj.bias', Hk * D],
      [weights.bv, 'v_proj.bias', Hk * D],
      [weights.bo, 'o_proj.bias', weights.wo ? xs.d : 0],
    ] as const) {
      if (!t) continue;
      if (n === 'o_proj.bias' && !weights.wo) throw new InputError('--weights', `${tensor(n)} is given without ${tensor('o_proj.weight')}`);
      if (t.shape.length !== 1 || t.shape[0] !== length)
        throw new InputError('--weights', `${tensor(n)} is [${t.shape.join(', ')}]; expected [${length}]`);
    }
    const rope = request.rope !== false && request.xKv === undefined;
    const theta = request.ropeTheta ?? 10000;
    if (!(Number.isFinite(theta) && theta > 0)) throw new InputError('--rope-theta', `expected a number > 0, got ${theta}`);
    if (rope && D % 2 !== 0) throw new InputError('--rope-theta', `RoPE needs an even head dim, D is ${D} (pass --no-rope)`);
    const shape = (S: number, heads: number) => (x.shape.length === 2 ? [heads, S, D] : [xs.B, heads, S, D]);
    const spec: AttentionSpec = {
      ...validateSpec({ q: shape(xs.S, H), k: shape(kvs.S, Hk), v: shape(kvs.S, Hk) }, { ...request.options, layout: 'bhsd' }),
      ...(request.allowNonfinite ? { allowNonfinite: true } : {}),
    };
    if (!request.allowNonfinite) {
      for (const t of opened) {
        const at = t.findNonFinite();
        if (at >= 0)
          throw new InputError(
            t.argument,
            `non-finite value at flat index ${at} of "${t.ref}" (pass --allow-nonfinite to let NaN/Inf through)`,
          );
      }
    }
    return {
      spec,
      x,
      xKv,
      weights,
      batched: x.shape.length === 3,
      dModel: xs.d,
      outDim: weights.wo ? xs.d : H * D,
      ropeTheta: rope ? theta : undefined,
      close: () => {
        for (const t of opened) t.close();
      },
    };
  } catch (error) {
    for (const t of opened) t.close();
    throw error;
  }
}

function optional<K extends string>(key: K, t: TensorReader | undefined): { [P in K]?: TensorReader } {
  return (t ? { [key]: t } : {}) as { [P in K]?: TensorReader };
}
