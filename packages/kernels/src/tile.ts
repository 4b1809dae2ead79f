import { keyHigh, keyLow, type MaskRule, type TilePartial } from '@longattn/attention';

/**
 * One tile of work for a kernel: rows [qStart, qStart+rows) of one query head against keys
 * [kStart, kStart+keys) of its kv head.
 *   q: [rows, D] float32, k and v: [keys, D] float32, all contiguous (row-major).
 * Row r (absolute i = qStart + r) sees key c (absolute j = kStart + c) iff
 *   keyLow(rule, i) ≤ j ≤ keyHigh(rule, i)   (@longattn/attention's mask, docs/math.md).
 * `full` promises that the mask hides nothing inside the tile (kernels may skip masking).
 */
export interface TileJob {
  rows: number;
  keys: number;
  D: number;
  scale: number;
  qStart: number;
  kStart: number;
  rule: MaskRule;
  full: boolean;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

/** A ready kernel of one backend: computes tiles into partials (o normalised, lse; kStart = job.kStart). */
export interface TileKernel {
  /** Registry name of the backend, e.g. `js`, `gpujs:headlessgl`. */
  readonly backend: string;
  /** What actually runs it, e.g. `cpu (portable JS)`, `NVIDIA H200 (GL)`. Never a device it is not using. */
  readonly device: string;
  run(job: TileJob): TilePartial | Promise<TilePartial>;
  dispose?(): void | Promise<void>;
}

export interface KernelOptions {
  /** Threads this kernel may use inside one tile (ort's intra-op threads). Default 1. */
  threads?: number;
  /** Backend mode, e.g. gpujs's `headlessgl`, `webasm`, `cpu`, `webgpu`. */
  mode?: string;
}

export interface Backend {
  /** Registry name; `--backend NAME[:MODE]`. */
  readonly name: string;
  readonly summary: string;
  /** Tile sizes this backend runs best with (overridable with --block-q / --block-k). */
  readonly defaultBlocks: { blockQ: number; blockK: number };
  /**
   * Modes every CI run must cover: the conformance suite runs each one, and fails (never skips)
   * when one cannot run. Default: the backend's default mode only.
   */
  readonly testedModes?: readonly string[];
  /**
   * `main`: kernels must live on the process's main thread (e.g. the gl addon is not
   * context-aware and cannot load in worker threads); the local engine then runs tiles in-process,
   * one at a time, and the device does the parallel work. Default `pool`.
   */
  readonly threading?: 'pool' | 'main';
  /** True when this backend can run on an accelerator (auto-selection asks probeHardware). */
  readonly accelerated?: boolean;
  /**
   * Accelerated backends: the options that reach real GPU hardware here (not a software
   * renderer such as llvmpipe), or null when there is none. Auto-selection uses it.
   */
  probeHardware?(): Promise<{ options: KernelOptions; device: string } | null>;
  /** null when the backend can run here (in this mode), else a one-line reason why not. */
  probe(options?: KernelOptions): Promise<string | null>;
  /** The device a kernel created with these options will run on (same text as TileKernel.device). */
  describe?(options?: KernelOptions): Promise<string>;
  create(options?: KernelOptions): Promise<TileKernel>;
}

/** Per-row visible key interval inside the tile, relative to kStart: [lo, hi], empty when hi < lo. */
export function rowKeyRange(job: Pick<TileJob, 'qStart' | 'kStart' | 'keys' | 'rule' | 'full'>, r: number): [number, number] {
  if (job.full) return [0, job.keys - 1];
  const i = job.qStart + r;
  return [Math.max(0, keyLow(job.rule, i) - job.kStart), Math.min(job.keys - 1, keyHigh(job.rule, i) - job.kStart)];
}
