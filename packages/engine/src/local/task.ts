import type { KernelOptions } from '@longattn/kernels';
import type { TensorLayout } from '@longattn/tensor';
import type { BlockOutputs } from '../block-outputs.ts';
import type { Projection } from '../layer/projection.ts';
import type { TaskSpec } from './task-spec.ts';

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
 * A layer's attention (docs/flow.md, "Layers"): K and V already projected into float32 files
 * (bhsd), the queries projected per q-block from X's rows [B·S, dModel] with `q` (all heads at
 * once, RoPE at positions qStart …), kept for the next q-block of the same rows.
 */
export interface LayerInputsOfTask {
  kind: 'layer';
  x: FileTensor;
  dModel: number;
  q: Projection;
  linear: 'ort' | 'js';
  k: FileTensor;
  v: FileTensor;
  /** Every projection of the layer: a warm-up task makes their GEMM sessions and reads their weights before the clock starts. */
  all: Projection[];
}

/**
 * A projection task of a layer (K/V before the attention, o_proj after it): rows
 * [firstRow, firstRow + rows) of `source` viewed as [*, width], each projection applied to them,
 * positions (for RoPE) from `position`. The reply packs the outputs in order, [rows, out] each;
 * `withInput` appends the rows read (o_proj's input, which is --attn-out's bshd O).
 * `gather` reads O in bhsd instead: `heads` runs of [rows, D] at (b·heads + h)·S + position.
 */
export interface ProjectTask {
  kind: 'project';
  linear: 'ort' | 'js';
  source: FileTensor;
  width: number;
  firstRow: number;
  rows: number;
  position: number;
  projections: Projection[];
  withInput?: boolean;
  gather?: { b: number; heads: number; S: number; D: number };
}

/**
 * What the local engine sends a pool thread: q-blocks to compute, by index into the job's plan,
 * which the thread rebuilds from (spec, blockQ, blockK) and keeps — no tile crosses threads.
 * The reply is the q-blocks' merged results packed in order (packPartials, transferred).
 */
export interface LocalTask {
  /** The job's spec, a block mask's cells in shared memory (task-spec.ts: fullSpec rebuilds it). */
  spec: TaskSpec;
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
  /** Release (with empty indices): the thread disposes its kernels, then holds until all `threads` have (the warm-up's barrier). */
  release?: { barrier: SharedArrayBuffer; threads: number };
  backend: string;
  kernelOptions: KernelOptions;
  inputs: TaskInputs | LayerInputsOfTask;
  /**
   * What the q-blocks must give (block-outputs.ts): `'lse'` for the LSE-only pass (runLocalLse:
   * V-free tiles, the reply packs [rows, 0] runs, lse alone), `'o'` when no LSE is written (run or
   * layer without --lse: sole tiles may skip it). Absent: `'o+lse'`.
   */
  outputs?: BlockOutputs;
  /** A reply's memory from an earlier task, moved back: this task's reply is written into it when it is large enough. */
  reuse?: Float32Array;
}
