import type { SpecOptions } from '@longattn/attention';
import type { HeadReport } from './report.ts';

/**
 * One inspect job (docs/contracts.md, "Attention patterns"), as the CLI and (later) the API's
 * `kind: "inspect"` jobs describe it. Inputs are `run`'s Q and K; `layer`'s X + weights are a
 * later source of the same Q and K (the hook: a request with `x` is refused until then).
 */
export interface InspectRequest {
  q: string;
  k: string;
  /** Reserved for layer inputs (`--x X --weights W`); not supported yet. */
  x?: string;
  options: SpecOptions;
  /** An LSE `[B,H,Sq]` to use instead of the first pass (`--lse`): exactly the row LSE of these inputs. */
  lse?: string;
  /** `--rows A:B`: rows whose top-k keys (and weight rows) are reported. */
  rows?: { from: number; to: number };
  /** Default 8. */
  topK?: number;
  /** Default 4. */
  sinksStat?: number;
  /** Default 128. */
  localStat?: number;
  /** Output paths: `--weights-out` `[B,H,B−A,Sk]`, `--received` `[B,H,Sk]` (float32 .npy/.safetensors), `--map` .png. */
  weightsOut?: string;
  received?: string;
  map?: string;
  /** Map cells per side, default 512 (at most Sq rows and Sk columns). */
  mapSize?: number;
  /** First pass (LSE): backend and tile sizes as `run`. */
  backend?: string;
  blockQ?: number;
  blockK?: number;
  allowNonfinite?: boolean;
}

/** The report `--json` prints: `heads` as the contract gives it, plus the settings it was made with. */
export interface InspectReport {
  heads: HeadReport[];
  sinksStat: number;
  localStat: number;
  topK: number;
  /** `--rows` as [A, B], or null. */
  rows: [number, number] | null;
  shape: { B: number; H: number; Hk: number; Sq: number; Sk: number; D: number };
}

export interface InspectResult {
  report: InspectReport;
  /** Paths written, by flag name. */
  files: { weightsOut?: string; received?: string; map?: string };
  /** Where the LSE came from: the kernels' first pass (`backend` named) or the `--lse` file. */
  lseFrom: 'pass' | 'file';
  backend: string | null;
  /**
   * The statistics pass's score tiles (kernels/src/score-tiles.ts): `ort` (MLAS float32 GEMM) where
   * onnxruntime-node loads, else `js`; the report's bits are reproducible for the same value.
   */
  scores: string;
  threads: number;
  chunks: number;
  /** With --map: the mean p per cell, [B·H·mapRows·mapCols] float64 (what the PNG shows), and the grid. */
  mapMeans?: Float64Array;
  mapGrid?: [number, number];
  /** Wall times: the LSE pass, the statistics pass, the whole job (validation to written files). */
  lseMs: number;
  inspectMs: number;
  wallMs: number;
}
