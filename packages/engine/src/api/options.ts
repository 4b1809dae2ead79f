import { Ajv, type ErrorObject } from 'ajv';
import type { PatternOptions, SpecOptions } from '@longattn/attention';
import { InputError } from '@longattn/tensor';
import { checkInspectOptions, inspectOptionsSchema, type InspectOptions } from './inspect-options.ts';
import { checkLayerOptions, layerOptionsSchema, type LayerOptions } from './layer-options.ts';

/** Job kinds the options' `kind` names. */
export const JOB_KINDS = ['attention', 'layer', 'inspect'] as const;
export const SERVED_KINDS: readonly string[] = ['attention', 'layer', 'inspect'];

/**
 * The `options` part of POST /v1/jobs: the CLI's `run` options in camelCase (docs/contracts.md),
 * and for `kind: "inspect"` also `inspect`'s (inspectOptionsSchema: rows, topK, … as flags), for
 * `kind: "layer"` `layer`'s (layerOptionsSchema: heads, kvHeads, prefix, ropeTheta, …).
 * One schema: it validates the part here and documents it in /openapi.json.
 */
export const jobOptionsSchema = {
  $id: 'JobOptions',
  type: 'object',
  additionalProperties: false,
  properties: {
    kind: {
      type: 'string',
      enum: [...JOB_KINDS],
      default: 'attention',
      description: 'attention (parts q, k, v), inspect (q, k) or layer (x, weights, optional x-kv)',
    },
    layout: { type: 'string', enum: ['bhsd', 'bshd'], default: 'bhsd' },
    causal: { type: 'boolean', default: false, description: 'bottom-right aligned (FlashAttention ≥ 2.1)' },
    window: {
      type: 'array',
      items: { type: 'integer', minimum: -1 },
      minItems: 2,
      maxItems: 2,
      description: '[left, right], inclusive; -1 = unbounded side',
    },
    scale: { type: 'number', description: 'softmax scale (default 1/√D)' },
    linear: {
      type: 'boolean',
      default: false,
      description: 'linear attention (elu+1 features): an approximation, not softmax; no window or scale, no LSE',
    },
    backend: { type: 'string', pattern: '^(auto|js|wasm|ort|gpujs(:[a-z0-9]+)?)$', default: 'auto' },
    blockQ: { type: 'integer', minimum: 1, maximum: 1 << 20 },
    blockK: { type: 'integer', minimum: 1, maximum: 1 << 20 },
    allowNonfinite: { type: 'boolean', default: false },
    sinks: { type: 'integer', minimum: 0, description: 'every query also sees keys 0 … N−1 (attention sinks)' },
    global: { type: 'array', items: { type: 'integer', minimum: 0 }, maxItems: 4096, description: 'global positions (Longformer)' },
    stride: { type: 'integer', minimum: 1, description: 'strided pattern (Sparse Transformer): j ≡ pos(i) mod stride' },
    maskBlock: {
      type: 'integer',
      minimum: 1,
      maximum: 1 << 30,
      description: 'block size B of the block mask sent as the `mask` part (.npy [nQb, nKb] or [H, nQb, nKb]); required with it',
    },
    tensors: {
      type: 'object',
      additionalProperties: false,
      description: 'tensor names inside .safetensors parts (like file.safetensors#name)',
      properties: Object.fromEntries(['q', 'k', 'v', 'x', 'x-kv'].map((p) => [p, { type: 'string', pattern: '^[A-Za-z0-9._/-]{1,200}$' }])),
    },
    ...inspectOptionsSchema,
    ...layerOptionsSchema,
  },
} as const;

/** Validated options every kind takes. */
interface BaseJobOptions {
  kind: (typeof JOB_KINDS)[number];
  layout: 'bhsd' | 'bshd';
  causal: boolean;
  window?: [number, number];
  scale?: number;
  linear: boolean;
  backend: string;
  blockQ?: number;
  blockK?: number;
  allowNonfinite: boolean;
  sinks?: number;
  global?: number[];
  stride?: number;
  maskBlock?: number;
  tensors?: { q?: string; k?: string; v?: string; x?: string; 'x-kv'?: string };
}

/** Validated job options (inspect's when kind is inspect, layer's when kind is layer). */
export type JobOptions = BaseJobOptions & InspectOptions & LayerOptions;

const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: false });
const check = ajv.compile(jobOptionsSchema);

/** `options.window: must have at most 2 items`-style message naming the field. */
function describe(error: ErrorObject): string {
  const path = error.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const field = error.keyword === 'additionalProperties' ? `${path ? `${path}.` : ''}${error.params.additionalProperty}` : path;
  const what = error.keyword === 'additionalProperties' ? 'unknown option' : error.message;
  return `${field ? `options.${field}` : 'options'}: ${what}`;
}

/** Parses and validates the options part; InputError('options…') naming the field. */
export function parseJobOptions(text: string | undefined): JobOptions {
  if (text === undefined) throw new InputError('options', 'missing part (a JSON object, e.g. {"kind":"attention"})');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InputError('options', `not valid JSON (${(error as Error).message})`);
  }
  const layoutGiven = typeof value === 'object' && value !== null && 'layout' in value;
  if (!check(value)) {
    const message = describe(check.errors![0]!);
    throw new InputError(message.slice(0, message.indexOf(':')), message.slice(message.indexOf(':') + 2));
  }
  const options = value as JobOptions;
  if (!SERVED_KINDS.includes(options.kind))
    throw new InputError('options.kind', `"${options.kind}" jobs are not served yet; expected attention, layer or inspect`);
  if (options.scale !== undefined && !Number.isFinite(options.scale)) throw new InputError('options.scale', 'expected a finite number');
  checkInspectOptions(options);
  checkLayerOptions(options, layoutGiven);
  return options;
}

/**
 * The SpecOptions the engine validates (the same as `longattn run`'s), with the pattern flags and
 * the block mask of the `mask` part (upload.ts) as the spec's pattern.
 */
export function specOptions(options: JobOptions, mask?: { shape: number[]; cells: Uint8Array }): SpecOptions {
  const pattern: PatternOptions = {
    ...(options.sinks !== undefined ? { sinks: options.sinks } : {}),
    ...(options.global !== undefined ? { global: options.global } : {}),
    ...(options.stride !== undefined ? { stride: options.stride } : {}),
    ...(mask ? { blockMask: { block: options.maskBlock!, ...mask } } : {}),
  };
  return {
    layout: options.layout,
    causal: options.causal,
    ...(options.window ? { window: { left: options.window[0], right: options.window[1] } } : {}),
    ...(options.scale !== undefined ? { scale: options.scale } : {}),
    ...(options.linear ? { linear: true } : {}),
    ...(Object.keys(pattern).length > 0 ? { pattern } : {}),
  };
}
