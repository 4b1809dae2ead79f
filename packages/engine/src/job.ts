import type { SpecOptions } from '@longattn/attention';

/** One attention job as the CLI, the API and services describe it (docs/contracts.md). */
export interface JobRequest {
  /** Input refs: `file.npy` or `file.safetensors#name`. */
  q: string;
  k: string;
  v: string;
  /** Output paths (`.npy` or `.safetensors`); O has Q's shape and layout, LSE is [B,H,Sq]. */
  out: string;
  lse?: string;
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
  shape: { B: number; H: number; Hk: number; Sq: number; Sk: number; D: number };
}
