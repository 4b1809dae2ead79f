import type { AttentionSpec } from '@longattn/attention';
import { openTensorAt, type TensorReader } from '@longattn/tensor';
import { arraySource, readerSource, type BlockSource } from '../block-source.ts';
import type { FileTensor, TaskInputs } from './task.ts';

/** Open readers of this thread, by file and layout (a thread serves one job at a time, so a few at most). */
const readers = new Map<string, TensorReader>();
/** Readers a thread keeps open (a layer job opens up to 12); past it, another job's are dropped. */
const MAX_READERS = 16;

/** Opens at the layout the main thread parsed: a thread never reads or parses a header. */
export function fileReader(t: FileTensor): TensorReader {
  const key = JSON.stringify([t.path, t.layout]);
  let r = readers.get(key);
  if (!r) {
    if (readers.size >= MAX_READERS) closeReaders(); // another job: drop the last one's files
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
  // The blocks depend on the files and the spec's shapes and layout, not its pattern (a block
  // mask's cells would make this key MBs long, stringified on every task).
  const key = JSON.stringify([inputs.q, inputs.k, inputs.v, spec.layout, spec.B, spec.H, spec.Hk, spec.Sq, spec.Sk, spec.D]);
  if (cached?.key !== key) {
    // Room for all three first: closing the cache between them would close this job's own q.
    if (readers.size > MAX_READERS - 3) closeReaders();
    cached = { key, source: readerSource(spec, fileReader(inputs.q), fileReader(inputs.k), fileReader(inputs.v), true) };
  }
  return cached.source;
}

/**
 * A block source with readers of its own, for one job on the main thread (mainThreadRunner):
 * several jobs may share the main thread, so they must not share (or close) each other's
 * readers through the per-thread cache above. `close()` closes what it opened.
 */
export function ownTaskSource(spec: AttentionSpec, inputs: TaskInputs): { source: BlockSource; close(): void } {
  if (inputs.kind === 'shared') return { source: arraySource(spec, inputs.q, inputs.k, inputs.v), close: () => {} };
  const opened = [inputs.q, inputs.k, inputs.v].map((t) => openTensorAt(t.path, t.layout, t.argument)) as [
    TensorReader,
    TensorReader,
    TensorReader,
  ];
  return {
    source: readerSource(spec, ...opened, true),
    close: () => {
      for (const r of opened) r.close();
    },
  };
}
