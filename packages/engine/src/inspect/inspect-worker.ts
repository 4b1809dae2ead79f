import type { AttentionSpec } from '@longattn/attention';
import { taskSource } from '../local/task-source.ts';
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

/** Runs the task's chunks in this pool thread (inspectChunk), in order. */
export default function runInspectTask(task: InspectTask): ChunkResult[] {
  const source = taskSource(task.spec, task.inputs);
  return task.chunks.map(({ chunk, lse }) => inspectChunk(task.spec, task.settings, source, chunk, lse));
}
