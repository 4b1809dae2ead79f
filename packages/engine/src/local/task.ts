import type { AttentionSpec, QBlockPlan } from '@longattn/attention';
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

/** What the local engine sends a pool thread: q-blocks to compute, in order. */
export interface LocalTask {
  spec: AttentionSpec;
  /** Empty for a warm-up task: the thread only creates and warms its kernel. */
  blocks: QBlockPlan[];
  /**
   * Warm-up: the job's tile size, and a barrier — an Int32Array counter over shared memory that
   * every warm-up task bumps; each then holds its thread until all `threads` have arrived, so
   * that each lands on its own thread.
   */
  warm?: { blockQ: number; blockK: number; barrier?: SharedArrayBuffer; threads?: number };
  backend: string;
  kernelOptions: KernelOptions;
  inputs: TaskInputs;
}

/** The reply, packed into one transferable buffer: per q-block, in order, [rows·D values of o, then rows values of lse]. */
export type LocalTaskResult = Float32Array;

export function packResults(results: readonly { o: Float32Array; lse: Float32Array }[]): Float32Array {
  const packed = new Float32Array(results.reduce((n, r) => n + r.o.length + r.lse.length, 0));
  let at = 0;
  for (const { o, lse } of results) {
    packed.set(o, at);
    packed.set(lse, at + o.length);
    at += o.length + lse.length;
  }
  return packed;
}

/** Splits a packed reply back into its q-blocks' (o, lse) views. */
export function unpackResults(
  packed: Float32Array,
  blocks: readonly Pick<QBlockPlan, 'rows'>[],
  D: number,
): { o: Float32Array; lse: Float32Array }[] {
  let at = 0;
  return blocks.map(({ rows }) => {
    const o = packed.subarray(at, at + rows * D);
    const lse = packed.subarray(at + rows * D, at + rows * D + rows);
    at += rows * D + rows;
    return { o, lse };
  });
}
