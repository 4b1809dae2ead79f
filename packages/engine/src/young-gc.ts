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
