import type { BatchOptions } from './batching.ts';

/** The optional tensors of a layer (docs/contracts.md, "Document layers"); q/k/v_proj.weight are always there. */
export const OPTIONAL_TENSORS = ['o_proj.weight', 'q_proj.bias', 'k_proj.bias', 'v_proj.bias', 'o_proj.bias'] as const;
export type LayerTensor = 'q_proj.weight' | 'k_proj.weight' | 'v_proj.weight' | (typeof OPTIONAL_TENSORS)[number];

/**
 * The part of a job's manifest that makes it a layer job (docs/flow.md, "Layers on the queue"):
 * the attention spec is the Q, K, V the projections make (bhsd, H = spec.H, D = spec.D, S = spec.Sq,
 * Skv = spec.Sk); this adds what the projection jobs and the o_proj jobs need.
 */
export interface LayerManifest {
  dModel: number;
  /** --x-kv's d_model (d_model for self-attention). */
  dKv: number;
  /** Y's last dim: d_model with o_proj, H·D without. */
  outDim: number;
  /** X's rank: 2 ([S, d_model]) or 3 ([B, S, d_model]); Y, O and LSE drop the batch dim as X does. */
  xRank: 2 | 3;
  /** Cross-attention: K and V come from in/xkv. */
  cross: boolean;
  /** The projection GEMM, resolved at submit like the backend. */
  linear: 'ort' | 'js';
  /** RoPE base; 0 when RoPE is off (--no-rope, cross-attention). */
  ropeTheta: number;
  /** Which of OPTIONAL_TENSORS the job has. */
  optional: string[];
  /** Projection blocks per projection job when set (tests); 0: about LAYER_JOB_FLOPS each. */
  blocksPerJob: number;
  /** Projection jobs of the first stage (K/V and Q) and of the last (o_proj). */
  inJobs: number;
  outJobs: number;
  /** 2·in·out per row of every projection, summed: the projections' share of the progress. */
  flops: number;
  /** How the attention stage's tile jobs are batched (the reducer adds that flow later, so it re-batches the same way). */
  batch: BatchOptions;
}

const int = (v: unknown, min: number, max = 2 ** 31 - 1) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** manifest.layer (optional) against the schema: the field that is wrong, or undefined. */
export function layerProblem(value: unknown, inspect: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || inspect !== undefined) return 'layer';
  for (const field of ['dModel', 'dKv', 'outDim', 'inJobs', 'outJobs'] as const) if (!int(value[field], 1)) return `layer.${field}`;
  if (value.xRank !== 2 && value.xRank !== 3) return 'layer.xRank';
  if (typeof value.cross !== 'boolean') return 'layer.cross';
  if (value.linear !== 'ort' && value.linear !== 'js') return 'layer.linear';
  if (!(typeof value.ropeTheta === 'number' && Number.isFinite(value.ropeTheta) && value.ropeTheta >= 0)) return 'layer.ropeTheta';
  const optional = value.optional;
  const known: readonly string[] = OPTIONAL_TENSORS;
  if (!Array.isArray(optional) || optional.length > known.length || !optional.every((n) => known.includes(n))) return 'layer.optional';
  if (!int(value.blocksPerJob, 0)) return 'layer.blocksPerJob';
  if (!(typeof value.flops === 'number' && Number.isFinite(value.flops) && value.flops >= 0)) return 'layer.flops';
  const batch = value.batch;
  if (!isObject(batch)) return 'layer.batch';
  if (batch.tilesPerJob !== undefined && !int(batch.tilesPerJob, 1)) return 'layer.batch';
  if (batch.jobFlops !== undefined && !(typeof batch.jobFlops === 'number' && batch.jobFlops > 0)) return 'layer.batch';
  return undefined;
}
