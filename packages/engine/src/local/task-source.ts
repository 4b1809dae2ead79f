import type { AttentionSpec } from '@longattn/attention';
import { openTensorAt, type TensorReader } from '@longattn/tensor';
import { arraySource, readerSource, type BlockSource } from '../block-source.ts';
import type { FileTensor, TaskInputs } from './task.ts';

/** Open readers of this thread, by file and layout (a thread serves one job at a time, so a few at most). */
const readers = new Map<string, TensorReader>();

/** Opens at the layout the main thread parsed: a thread never reads or parses a header. */
export function fileReader(t: FileTensor): TensorReader {
  const key = JSON.stringify([t.path, t.layout]);
  let r = readers.get(key);
  if (!r) {
    if (readers.size >= 16) closeReaders(); // another job: drop the last one's files (a layer opens up to 12)
    r = openTensorAt(t.path, t.layout, t.argument);
    readers.set(key, r);
  }
  return r;
}

export function closeReaders(): void {
  for (const r of readers.values()) r.close();
  readers.clear();
  cached = undefined;
}

/** This thread's file source for the current job, kept so its read buffers are reused across tasks. */
let cached: { key: string; source: BlockSource } | undefined;

/**
 * The block source of a task in this thread: positional file reads into buffers reused across
 * tasks (fresh memory is slow to touch on first use: a new 1 MB buffer per task cost ~4 ms here),
 * or shared memory.
 */
export function taskSource(spec: AttentionSpec, inputs: TaskInputs): BlockSource {
  if (inputs.kind === 'shared') return arraySource(spec, inputs.q, inputs.k, inputs.v);
  const key = JSON.stringify([inputs.q, inputs.k, inputs.v, spec]);
  if (cached?.key !== key)
    cached = { key, source: readerSource(spec, fileReader(inputs.q), fileReader(inputs.k), fileReader(inputs.v), true) };
  return cached.source;
}
