import type { AttentionSpec } from '@longattn/attention';
import type { KernelOptions } from '@longattn/kernels';
import type { TensorLayout } from '@longattn/tensor';

/** A tensor in a file whose header the main thread parsed once: threads open it at `layout`, never re-reading the header. */
export interface FileTensor {
  path: string;
  argument: string;
  layout: TensorLayout;
}

/**
 * Where a pool thread finds the inputs: the files themselves (float32 inputs: each thread reads
 * its blocks with positional reads, so memory stays bounded by the blocks however long the
 * document), or SharedArrayBuffer-backed float32 copies (f16/bf16/f64 inputs, converted once and
 * shared, never copied per thread). Both in the spec's layout.
 */
export type TaskInputs =
  | { kind: 'files'; q: FileTensor; k: FileTensor; v: FileTensor }
  | { kind: 'shared'; q: Float32Array; k: Float32Array; v: Float32Array };

/**
 * What the local engine sends a pool thread: q-blocks to compute, by index into the job's plan,
 * which the thread rebuilds from (spec, blockQ, blockK) and keeps — no tile crosses threads.
 * The reply is the q-blocks' merged results packed in order (packPartials, transferred).
 */
export interface LocalTask {
  spec: AttentionSpec;
  /** This run's id: what a thread keys its per-job caches by (linear attention's states). */
  run: string;
  /** The job's tile size (the plan's, and the warm-up's). */
  blockQ: number;
  blockK: number;
  /** Q-block indices; empty for a warm-up task: the thread only creates and warms its kernel. */
  indices: number[];
  /**
   * Warm-up: a barrier — an Int32Array counter over shared memory that every warm-up task bumps;
   * each then holds its thread until all `threads` have arrived, so that each lands on its own thread.
   */
  warm?: { barrier: SharedArrayBuffer; threads: number };
  backend: string;
  kernelOptions: KernelOptions;
  inputs: TaskInputs;
}
