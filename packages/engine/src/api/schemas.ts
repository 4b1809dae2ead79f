import { jobOptionsSchema } from './options.ts';

/** JSON schemas of the routes: fastify validates with them and @fastify/swagger documents them. */

export const errorSchema = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string', description: 'one line naming the field' },
    field: { type: 'string' },
  },
} as const;

export const jobIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 64, description: 'job id, as POST /v1/jobs returned it' } },
} as const;

export const jobViewSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    state: { type: 'string', enum: ['queued', 'running', 'done', 'failed', 'cancelled'] },
    progress: { type: 'object', properties: { done: { type: 'integer' }, total: { type: 'integer' } }, description: 'tiles' },
    flops: { type: 'object', properties: { done: { type: 'number' }, total: { type: 'number' } } },
    createdAt: { type: 'integer' },
    startedAt: { type: 'integer' },
    finishedAt: { type: 'integer' },
    error: { type: 'string' },
    shape: {
      type: 'object',
      properties: Object.fromEntries(['B', 'H', 'Hk', 'Sq', 'Sk', 'D'].map((k) => [k, { type: 'integer' }])),
    },
    qBlocks: { type: 'integer' },
    blockQ: { type: 'integer' },
    blockK: { type: 'integer' },
    gflops: { type: 'number' },
    approximation: { type: 'string', enum: ['linear'], description: 'present when the job is not exact softmax attention' },
    workers: { type: 'integer' },
    backends: { type: 'array', items: { type: 'string' } },
    options: { type: 'object', additionalProperties: true },
  },
} as const;

/** POST /v1/jobs body, for the documentation (the multipart stream is checked part by part as it arrives). */
export const submitBodySchema = {
  type: 'object',
  required: ['options'],
  properties: {
    options: {
      type: 'string',
      contentMediaType: 'application/json',
      description: `JSON: ${JSON.stringify(Object.keys(jobOptionsSchema.properties))}`,
    },
    q: { type: 'string', format: 'binary', description: 'queries, .npy or .safetensors' },
    k: { type: 'string', format: 'binary', description: 'keys' },
    v: { type: 'string', format: 'binary', description: 'values (attention jobs; inspect jobs take q and k only)' },
    x: { type: 'string', format: 'binary', description: 'layer jobs: hidden states X [S, d_model] or [B, S, d_model]' },
    weights: { type: 'string', format: 'binary', description: 'layer jobs: the .safetensors of q/k/v(/o)_proj weights and biases' },
    'x-kv': { type: 'string', format: 'binary', description: 'layer jobs: keys/values source for cross-attention' },
    mask: {
      type: 'string',
      format: 'binary',
      description: 'any kind: a block mask .npy [nQb, nKb] or [H, nQb, nKb] (nonzero = visible), with options.maskBlock',
    },
  },
} as const;

export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
    offset: { type: 'integer', minimum: 0, default: 0 },
  },
} as const;
