import type { Plan, SpecOptions } from '@longattn/attention';
import type { OutDType } from '@longattn/tensor';

/** One attention job as the CLI, the API and services describe it (docs/contracts.md). */
export interface JobRequest {
  /** Input refs: `file.npy` or `file.safetensors#name`. */
  q: string;
  k: string;
  v: string;
  /** Output paths (`.npy` or `.safetensors`); O has Q's shape and layout, LSE is [B,H,Sq]. */
  out: string;
  lse?: string;
  /** O's element type (`--out-dtype`), default f32; `.npy` has no bf16. LSE is always f32. */
  outDtype?: OutDType;
  options: SpecOptions;
  /** `auto`, `js`, `wasm`, `ort`, `gpujs[:mode]`. Default auto. */
  backend?: string;
  blockQ?: number;
  blockK?: number;
  /** Pass NaN/Inf inputs through instead of refusing them. */
  allowNonfinite?: boolean;
}

/** Progress of a running job; tiles are the planner's tiles, flops the unmasked work. */
export interface Progress {
  doneTiles: number;
  totalTiles: number;
  doneFlops: number;
  totalFlops: number;
}

export interface JobResult {
  out: string;
  lse?: string;
  backend: string;
  device: string;
  engine: 'local' | 'queue';
  threads: number;
  blockQ: number;
  blockK: number;
  tiles: number;
  /** Tiles the mask emptied, never computed. */
  skippedTiles: number;
  /** Unmasked FLOPs (4·D per visible pair) actually asked of kernels. */
  flops: number;
  /** Wall time of the whole job (validation to committed output). */
  wallMs: number;
  /** Wall time of the compute phase alone. */
  computeMs: number;
  gflops: number;
  /** Present for an approximation: `linear` (--linear, not softmax; docs/math.md, "Linear attention"). */
  approximation?: 'linear';
  shape: { B: number; H: number; Hk: number; Sq: number; Sk: number; D: number };
}

/** What a result needs of a plan: a Plan, or a queued job's manifest (which carries the same totals). */
export type PlanTotals = Pick<Plan, 'spec' | 'blockQ' | 'blockK' | 'tileCount' | 'skippedTiles' | 'flops'>;

/** The one JobResult builder (both engines): the plan's totals, who ran it, and the two timings. */
export function jobResult(
  request: Pick<JobRequest, 'out' | 'lse'>,
  planned: PlanTotals,
  ran: Pick<JobResult, 'backend' | 'device' | 'engine' | 'threads' | 'wallMs' | 'computeMs'>,
): JobResult {
  const { spec } = planned;
  return {
    out: request.out,
    ...(request.lse ? { lse: request.lse } : {}),
    backend: ran.backend,
    device: ran.device,
    engine: ran.engine,
    threads: ran.threads,
    blockQ: planned.blockQ,
    blockK: planned.blockK,
    tiles: planned.tileCount,
    skippedTiles: planned.skippedTiles,
    flops: planned.flops,
    wallMs: ran.wallMs,
    computeMs: ran.computeMs,
    gflops: planned.flops / 1e6 / ran.computeMs,
    ...(spec.linear ? { approximation: 'linear' as const } : {}),
    shape: { B: spec.B, H: spec.H, Hk: spec.Hk, Sq: spec.Sq, Sk: spec.Sk, D: spec.D },
  };
}
