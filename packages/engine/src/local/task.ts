import type { AttentionSpec, QBlockPlan } from '@longattn/attention';
import type { KernelOptions } from '@longattn/kernels';

/**
 * Where a pool thread finds the inputs: the files themselves (float32 inputs: each thread reads
 * its blocks with positional reads, so memory stays bounded by the blocks however long the
 * document), or SharedArrayBuffer-backed float32 copies (f16/bf16/f64 inputs, converted once and
 * shared, never copied per thread). Both in the spec's layout.
 */
export type TaskInputs = { kind: 'files'; q: string; k: string; v: string } | { kind: 'shared'; q: Float32Array; k: Float32Array; v: Float32Array };

/** What the local engine sends a pool thread: a q-block to compute. */
export interface LocalTask {
  spec: AttentionSpec;
  /** Absent for a warm-up task: the thread only creates its kernel (and holds the thread briefly). */
  block?: QBlockPlan;
  backend: string;
  kernelOptions: KernelOptions;
  inputs: TaskInputs;
}

/** The reply, packed into one transferable buffer: [rows·D values of o, then rows values of lse]. */
export type LocalTaskResult = Float32Array;

export function packResult(o: Float32Array, lse: Float32Array): Float32Array {
  const packed = new Float32Array(o.length + lse.length);
  packed.set(o);
  packed.set(lse, o.length);
  return packed;
}

export function unpackResult(packed: Float32Array, rows: number, D: number): { o: Float32Array; lse: Float32Array } {
  return { o: packed.subarray(0, rows * D), lse: packed.subarray(rows * D, rows * D + rows) };
}
