import type { SpecOptions } from '@longattn/attention';
import type { JobResult } from '../job.ts';

/** One attention layer over a document, as the CLI describes it (docs/contracts.md, "Document layers"). */
export interface LayerRequest {
  /** Hidden states: `[S, d_model]` or `[B, S, d_model]` (.npy or .safetensors#name; f32, f16, bf16, f64). */
  x: string;
  /** Keys' and values' source for cross-attention (`[Skv, d]` / `[B, Skv, d]`); RoPE is then off. */
  xKv?: string;
  /** A .safetensors file holding `PREFIXq_proj.weight`, … with Hugging Face names. */
  weights: string;
  /** Name prefix of the layer's tensors, e.g. `model.layers.0.self_attn.`; default ''. */
  prefix?: string;
  heads: number;
  /** Default `heads`. */
  kvHeads?: number;
  /** RoPE base; default 10000. */
  ropeTheta?: number;
  /** false: no RoPE (`--no-rope`); cross-attention never rotates. Default true. */
  rope?: boolean;
  /** Y: `[…, S, d_model]` (with o_proj) or `[…, S, H·D]`, float32. */
  out: string;
  /** O as `bshd` (`[B, S, H, D]`, X's batch dim kept or dropped). */
  attnOut?: string;
  /** LSE `[B, H, S]`. */
  lse?: string;
  /** causal, window, scale, pattern; the layout is always bshd (Q, K, V come out of X that way). */
  options: Omit<SpecOptions, 'layout'>;
  backend?: string;
  blockQ?: number;
  blockK?: number;
  allowNonfinite?: boolean;
  /** The projection GEMM: `ort` where onnxruntime loads, else `js` (default: that choice). */
  projection?: 'ort' | 'js';
}

/** A layer's result: the attention's JobResult (its timings cover the whole layer) and the projections'. */
export interface LayerResult extends JobResult {
  attnOut?: string;
  layer: {
    dModel: number;
    /** Y's last dim: d_model with o_proj, H·D without. */
    outDim: number;
    rope: boolean;
    projection: 'ort' | 'js';
    /** 2·rows·in·out summed over q, k, v and o_proj. */
    projectionFlops: number;
    /** Wall time of each phase: K/V projection, attention (with the Q projection), o_proj. */
    kvMs: number;
    attentionMs: number;
    outMs: number;
  };
}

/**
 * The layer's result from its attention's (jobResult over the attention plan): FLOPs and GFLOP/s
 * count the projections too. Both engines report a layer through this.
 */
export function layerResult(attention: JobResult, attnOut: string | undefined, layer: LayerResult['layer']): LayerResult {
  const flops = attention.flops + layer.projectionFlops;
  return { ...attention, ...(attnOut ? { attnOut } : {}), flops, gflops: flops / 1e6 / attention.computeMs, layer };
}
