import { createHash } from 'node:crypto';
import type { AttentionSpec } from '@longattn/attention';

/**
 * How a job's spec travels to pool threads with every task. A block mask's cells (base64, 1.4 MB
 * at n = 131072 with 128-token blocks) would be structured-cloned into a fresh string on both
 * sides of every task: at BigBird's 32 tasks that cost ~27% of the pool threads' CPU and most of
 * the main thread's during the compute (perf, docs/math.md "Where a run's compute phase went").
 * Instead the cells cross once into shared memory (a SharedArrayBuffer is shared, not copied, by
 * postMessage), tasks carry the spec with empty cells, and a thread rebuilds the full spec only
 * when the cells' digest changes.
 */
export interface TaskSpec {
  /** The spec, with a block mask's `cells` emptied when `cells` below holds them. */
  spec: AttentionSpec;
  /** The block mask's base64 cells as latin1 bytes, and their sha256 (what a thread compares). */
  cells?: { bytes: SharedArrayBuffer; digest: string };
}

/** Main thread: the spec as tasks carry it (made once per runner, not per task). */
export function taskSpec(spec: AttentionSpec): TaskSpec {
  const mask = spec.pattern?.blockMask;
  if (!mask) return { spec };
  const bytes = new SharedArrayBuffer(mask.cells.length);
  Buffer.from(bytes).write(mask.cells, 'latin1');
  const digest = createHash('sha256').update(mask.cells, 'latin1').digest('base64');
  return { spec: { ...spec, pattern: { ...spec.pattern, blockMask: { ...mask, cells: '' } } }, cells: { bytes, digest } };
}

/** This thread's last full spec, by the shipped spec's JSON and the cells' digest. */
let last: { key: string; digest: string | undefined; spec: AttentionSpec } | undefined;

/**
 * Pool thread: the full spec of a task (the same object while tasks bring the same spec, so
 * per-spec caches keyed by it stay warm), and `key`, which is the same exactly when the spec is.
 */
export function fullSpec(shipped: TaskSpec): { spec: AttentionSpec; key: string } {
  const key = JSON.stringify(shipped.spec);
  const digest = shipped.cells?.digest;
  if (last?.key !== key || last.digest !== digest) {
    const mask = shipped.spec.pattern?.blockMask;
    const spec =
      mask && shipped.cells
        ? {
            ...shipped.spec,
            pattern: { ...shipped.spec.pattern, blockMask: { ...mask, cells: Buffer.from(shipped.cells.bytes).toString('latin1') } },
          }
        : shipped.spec;
    last = { key, digest, spec };
  }
  return { spec: last.spec, key: `${last.key}|${digest ?? ''}` };
}
