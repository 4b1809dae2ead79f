import type { AttentionSpec, Tile } from '@longattn/attention';
import type { TileKernel } from '@longattn/kernels';

/**
 * Scores a batched call may hold, C · R · K (256 Ki float32 = 1 MiB per intermediate, about L2):
 * 4 classes of 128 rows × 512 keys at n = 131072, S = 128. Larger batches ran slower: the
 * masked graph's passes over its scores then miss the cache (measured in docs/math.md, "Stride
 * tiles on gathered rows": one call for all 128 classes of a chunk cost ~25% more than one per class).
 */
export const BATCH_SCORES = 1 << 18;

/**
 * Stride tiles of one q-block and key chunk cut into batches (docs/math.md, "Stride tiles on
 * gathered rows"): runs of consecutive tiles whose classes and key residues both go up by one
 * (their rows and keys lie side by side in the re-laid blocks), all masked or all full with the
 * same keys, with at
 * most BATCH_SCORES padded scores. Depends on the tiles alone, so every engine batches a q-block alike.
 */
export function batchGroups(tiles: readonly Tile[]): Tile[][] {
  const groups: Tile[][] = [];
  let group: Tile[] = [];
  let R = 0;
  let K = 0;
  for (const t of tiles) {
    const prev = group[group.length - 1];
    const r = Math.max(R, t.rowSpan![1]);
    const k = Math.max(K, t.keys);
    const joins =
      prev !== undefined &&
      t.full === prev.full &&
      (!t.full || t.keys === prev.keys) && // a full batch has no mask: no padding keys (padding rows are dropped)
      t.rowSpan![0] === prev.rowSpan![0] + 1 &&
      t.kStart === prev.kStart + 1 &&
      (group.length + 1) * r * k <= BATCH_SCORES;
    if (!joins) {
      if (group.length > 0) groups.push(group);
      group = [t];
      R = t.rowSpan![1];
      K = t.keys;
    } else {
      group.push(t);
      R = r;
      K = k;
    }
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** Per-thread buffers classes are packed into when they do not already lie as [C, N, D] (reused across calls). */
const packScratch = { q: new Float32Array(0), k: new Float32Array(0), v: new Float32Array(0) };

/**
 * Classes c (rows `counts[c]` from element `at[c]` of `src`, D per row) as one [C, N, D] block:
 * the subarray of `src` when they already lie that way (each N rows, one after the other), else
 * packed into this thread's `which` buffer with zero rows after each class's own (padding: never
 * visible, and 0 · 0 adds nothing).
 */
export function packClasses(
  src: Float32Array,
  at: readonly number[],
  counts: readonly number[],
  N: number,
  D: number,
  which: 'q' | 'k' | 'v',
): Float32Array {
  const C = at.length;
  if (counts.every((n, c) => n === N && at[c] === at[0]! + c * N * D)) return src.subarray(at[0]!, at[0]! + C * N * D);
  if (packScratch[which].length < C * N * D) packScratch[which] = new Float32Array(C * N * D);
  const out = packScratch[which].subarray(0, C * N * D);
  for (let c = 0; c < C; c++) {
    out.set(src.subarray(at[c]!, at[c]! + counts[c]! * D), c * N * D);
    out.fill(0, (c * N + counts[c]!) * D, (c + 1) * N * D);
  }
  return out;
}

/** Per-thread buffer of batched visibility [C, R, K]. */
let visibleScratch = new Uint8Array(0);

/** [C, R, K] visibility of a masked batch, each tile's [R, K] zeroed and then marked by `mark` (padding stays 0). */
export function markBatchVisible(group: readonly Tile[], R: number, K: number, mark: (tile: Tile, into: Uint8Array) => void): Uint8Array {
  const n = group.length * R * K;
  if (visibleScratch.length < n) visibleScratch = new Uint8Array(n);
  const out = visibleScratch.subarray(0, n);
  out.fill(0);
  for (let c = 0; c < group.length; c++) mark(group[c]!, out.subarray(c * R * K, (c + 1) * R * K));
  return out;
}

/**
 * Opens and runs the kernel's batched graphs (mask-free and masked) on a small batch, so that
 * their sessions are built before the timed compute, as warmKernel does for the per-tile graphs.
 * No-op on kernels without runBatch, or with --allow-nonfinite (no batches then).
 */
export async function warmBatches(
  kernel: TileKernel,
  spec: Pick<AttentionSpec, 'D' | 'scale' | 'pattern' | 'allowNonfinite' | 'linear'>,
  lseOnly: boolean,
): Promise<void> {
  if (!spec.pattern?.stride || spec.linear || spec.allowNonfinite || !kernel.runBatch || !kernel.lseBatch) return;
  const [C, R, K, D] = [2, 8, 16, spec.D];
  const q = new Float32Array(C * R * D).fill(0.01);
  const kv = new Float32Array(C * K * D).fill(0.01);
  for (const full of [true, false]) {
    const job = { C, R, K, D, scale: spec.scale, full, ...(full ? {} : { visible: new Uint8Array(C * R * K).fill(1) }), q, k: kv };
    if (lseOnly) await kernel.lseBatch(job);
    else await kernel.runBatch({ ...job, v: kv });
  }
}
