import { InputError } from '@longattn/tensor';
import type { LayerRequest } from '../layer/request.ts';

/**
 * `kind: "layer"` options of POST /v1/jobs: `longattn layer`'s flags in camelCase
 * (docs/contracts.md, "Document layers"; the parts are `x`, `weights` and optionally `x-kv`).
 */
export const layerOptionsSchema = {
  heads: { type: 'integer', minimum: 1, maximum: 1 << 16, description: 'layer: query heads H (D = q_proj rows / H); required' },
  kvHeads: { type: 'integer', minimum: 1, maximum: 1 << 16, description: 'layer: key/value heads (GQA; default heads)' },
  prefix: { type: 'string', pattern: '^[A-Za-z0-9._/-]{0,200}$', description: 'layer: tensor name prefix, e.g. model.layers.0.self_attn.' },
  ropeTheta: { type: 'number', description: 'layer: RoPE base (Hugging Face rotate_half; default 10000)' },
  noRope: { type: 'boolean', description: 'layer: no rotary embedding' },
} as const;

export interface LayerOptions {
  heads?: number;
  kvHeads?: number;
  prefix?: string;
  ropeTheta?: number;
  noRope?: boolean;
}

/** The parts a layer job takes: X and the weights, and --x-kv's for cross-attention. */
export const LAYER_PARTS: readonly string[] = ['x', 'weights', 'x-kv'];

/**
 * Layer options on another kind of job, or a layer job without `heads`, with `linear` or a
 * `layout` (Q, K, V come out of X as they do): InputError naming the field.
 */
export function checkLayerOptions(options: LayerOptions & { kind: string; linear: boolean; layout: string }, layoutGiven: boolean): void {
  if (options.kind !== 'layer') {
    const given = Object.keys(layerOptionsSchema).find((key) => options[key as keyof LayerOptions] !== undefined);
    if (given) throw new InputError(`options.${given}`, `only for kind "layer" jobs, got kind "${options.kind}"`);
    return;
  }
  if (options.heads === undefined) throw new InputError('options.heads', 'required for kind "layer" jobs (query heads H)');
  if (options.linear) throw new InputError('options.linear', 'not for kind "layer" jobs');
  if (layoutGiven) throw new InputError('options.layout', 'not for kind "layer" jobs (X is [S, d_model] or [B, S, d_model])');
  if (options.noRope && options.ropeTheta !== undefined) throw new InputError('options.ropeTheta', 'given with noRope');
  if (options.ropeTheta !== undefined && !(Number.isFinite(options.ropeTheta) && options.ropeTheta > 0))
    throw new InputError('options.ropeTheta', `expected a number > 0, got ${options.ropeTheta}`);
}

/**
 * The engine's request of a layer job's options and uploaded parts (files in the upload's temp
 * dir). Output paths are placeholders: the queue engine keeps Y, O and LSE as blobs. Patterns
 * (sinks, global, stride, the mask part) come in `common.options` as for every kind (specOptions).
 */
export function layerRequestOf(
  options: LayerOptions,
  refs: { x: string; weights: string; xKv?: string },
  common: Pick<LayerRequest, 'options' | 'backend' | 'blockQ' | 'blockK' | 'allowNonfinite'>,
): LayerRequest {
  return {
    x: refs.x,
    ...(refs.xKv ? { xKv: refs.xKv } : {}),
    weights: refs.weights,
    prefix: options.prefix ?? '',
    heads: options.heads!,
    ...(options.kvHeads !== undefined ? { kvHeads: options.kvHeads } : {}),
    ...(options.ropeTheta !== undefined ? { ropeTheta: options.ropeTheta } : {}),
    rope: !options.noRope,
    out: 'y.npy',
    ...common,
  };
}
