import { InputError } from '@longattn/tensor';
import type { InspectRequest } from '../inspect/request.ts';

/**
 * `kind: "inspect"` options of POST /v1/jobs: `longattn inspect`'s flags in camelCase
 * (docs/contracts.md); the outputs are booleans (the job keeps them: result/received, result/map).
 */
export const inspectOptionsSchema = {
  rows: {
    type: 'array',
    items: { type: 'integer', minimum: 0 },
    minItems: 2,
    maxItems: 2,
    description: 'inspect: [A, B], the query rows whose top-k keys (and weights) are reported',
  },
  topK: { type: 'integer', minimum: 0, maximum: 1 << 20, description: 'inspect: keys listed per row of rows (default 8)' },
  sinksStat: { type: 'integer', minimum: 0, description: 'inspect: sinkShare sums p over keys j < N (default 4)' },
  localStat: { type: 'integer', minimum: 0, description: 'inspect: localShare sums p over |pos(i) − j| ≤ W (default 128)' },
  weightsOut: { type: 'boolean', description: 'inspect: keep the exact weight rows of rows ([B,H,B−A,Sk])' },
  received: { type: 'boolean', description: 'inspect: Σ_i p_ij per key, [B,H,Sk] (result/received)' },
  map: { type: 'boolean', description: 'inspect: the attention map PNG (result/map)' },
  mapSize: { type: 'integer', minimum: 1, maximum: 4096, description: 'inspect: map cells per side (default 512)' },
} as const;

export interface InspectOptions {
  rows?: [number, number];
  topK?: number;
  sinksStat?: number;
  localStat?: number;
  weightsOut?: boolean;
  received?: boolean;
  map?: boolean;
  mapSize?: number;
}

/** The tensor parts an inspect job takes (no V: its weights are the statistic). */
export const INSPECT_PARTS: readonly string[] = ['q', 'k'];

/** Inspect's options on another kind of job: InputError naming the field. */
export function checkInspectOptions(options: InspectOptions & { kind: string }): void {
  if (options.kind === 'inspect') return;
  const given = Object.keys(inspectOptionsSchema).find((key) => options[key as keyof InspectOptions] !== undefined);
  if (given) throw new InputError(`options.${given}`, `only for kind "inspect" jobs, got kind "${options.kind}"`);
}

/**
 * The engine's request of an inspect job's options and uploaded Q, K. Outputs are flags here:
 * the queue engine keeps them as blobs, so the names only say which to make.
 */
export function inspectRequestOf(
  options: InspectOptions,
  refs: { q: string; k: string },
  common: Pick<InspectRequest, 'options' | 'backend' | 'blockQ' | 'blockK' | 'allowNonfinite'>,
): InspectRequest {
  const request: InspectRequest = { q: refs.q, k: refs.k, ...common };
  if (options.rows) request.rows = { from: options.rows[0], to: options.rows[1] };
  if (options.topK !== undefined) request.topK = options.topK;
  if (options.sinksStat !== undefined) request.sinksStat = options.sinksStat;
  if (options.localStat !== undefined) request.localStat = options.localStat;
  if (options.mapSize !== undefined) request.mapSize = options.mapSize;
  if (options.weightsOut) request.weightsOut = 'weights.npy';
  if (options.received) request.received = 'received.npy';
  if (options.map) request.map = 'map.png';
  return request;
}
