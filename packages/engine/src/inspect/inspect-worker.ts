import type { AttentionSpec } from '@longattn/attention';
import { taskSource } from '../local/task-source.ts';
import { releasedChunkGarbage } from '../young-gc.ts';
import type { TaskInputs } from '../local/task.ts';
import { inspectChunk, type ChunkRef, type ChunkResult } from './chunk.ts';
import type { InspectSettings } from './settings.ts';

/** A pool task of the inspect pass: chunks, each with its rows' LSE [rows] from the first pass. */
export interface InspectTask {
  spec: AttentionSpec;
  settings: InspectSettings;
  inputs: TaskInputs;
  chunks: { chunk: ChunkRef; lse: Float32Array }[];
}

/** Runs the task's chunks in this pool thread (inspectChunk), in order; the results are copied out as the reply, then dead here. */
export default function runInspectTask(task: InspectTask): ChunkResult[] {
  const source = taskSource(task.spec, task.inputs);
  return task.chunks.map(({ chunk, lse }) => {
    const result = inspectChunk(task.spec, task.settings, source, chunk, lse);
    releasedChunkGarbage(chunkBytes(task.spec, result)); // counted now, collected once enough has died
    return result;
  });
}

/** The arrays a chunk result holds (and about what the chunk allocated besides: Q rows, map columns). */
export function chunkBytes(spec: AttentionSpec, result: ChunkResult): number {
  const arrays = [result.entropy, result.distance, result.sink, result.local, result.received, result.cells, result.weights];
  return arrays.reduce((n, a) => n + (a?.byteLength ?? 0), 0) + spec.D * 4 * result.entropy.length + 4 * spec.Sk;
}
