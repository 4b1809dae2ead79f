import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Bounds the dead tile outputs a kernel thread holds. Every tile leaves its partial behind once
 * its q-block is merged — onnxruntime's output buffers alone are ~65 KB per tile — and V8 lets an
 * isolate accumulate ~64 MB of such dead external memory before it collects on its own, in every
 * thread. A young-generation collection each time GARBAGE_BYTES of partials have been produced
 * (well under 1 ms) frees them: n = 131072 causal on `ort`, peak RSS 288–314 MB → 255–269 MB at
 * the same speed (n = 16384: −15 to −25 MB). V8's gc() is reached the way the `expose-gc` package
 * does it: set the flag, then take `gc` from a fresh context. Where that is refused, nothing is
 * collected early (V8's own GC still runs).
 */
const GARBAGE_BYTES = 2 << 20;

type Gc = (options?: { type: 'minor' | 'major' }) => void;
let gc: Gc | null | undefined;
let produced = 0;

function loadGc(): Gc | null {
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    return typeof fn === 'function' ? (fn as Gc) : null;
  } catch {
    return null;
  }
}

/** Counts `bytes` of tile outputs this thread just let go of; collects the young generation every GARBAGE_BYTES. */
export function releasedTileOutputs(bytes: number): void {
  produced += bytes;
  if (produced < GARBAGE_BYTES) return;
  produced = 0;
  gc ??= loadGc();
  gc?.({ type: 'minor' });
}

/** Chunk garbage between full collections (see releasedChunkGarbage). */
const CHUNK_GARBAGE_BYTES = 16 << 20;
let chunkGarbage = 0;

/**
 * Counts `bytes` of an inspect chunk's arrays this thread just let go of (the pool thread's
 * received [Sk] float64, Q rows and map columns; the main thread's cloned chunk result); a full
 * collection every CHUNK_GARBAGE_BYTES. They live for a whole chunk (~0.1–1 s), long enough to be
 * promoted out of the young generation, so a minor collection does not reach them — and V8 lets
 * dead external memory pile up per isolate before it collects on its own (see GARBAGE_BYTES).
 * A full collection of these small heaps takes a few ms, once per ~30 chunks at Sk = 65536.
 */
export function releasedChunkGarbage(bytes: number): void {
  chunkGarbage += bytes;
  if (chunkGarbage < CHUNK_GARBAGE_BYTES) return;
  chunkGarbage = 0;
  gc ??= loadGc();
  gc?.(); // gc() itself: gc({ type: 'major' }) left such buffers alive here (Node 20)
}
