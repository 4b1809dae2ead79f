import { checkMergedRows, emptyPartial, merge, type TilePartial } from '@longattn/attention';
import type { Redis } from 'ioredis';
import { bytesToF32, f32Bytes, type BlobStore } from '../blobs/blob-store.ts';
import { FsBlobStore } from '../blobs/fs-store.ts';
import { RetryableJobError, StrayJobError } from '../errors.ts';
import { packedBytes, unpackPartials } from '../packed.ts';
import { lseOnly } from './inspect-manifest.ts';
import type { JobContext } from './job-context.ts';
import { blobNames, jobKeys } from './names.ts';
import { runFirsts } from './progress.ts';
import { sleep } from './service.ts';
import { BufferPool } from './buffer-pool.ts';

/**
 * Finishes q-blocks `qis` of a job (plan indices) that no tile job merged itself: a q-block split
 * across tile jobs is merged exactly as computeQBlock does (merge() of all its tiles' partials,
 * which sorts them by kStart), a fully masked one is 0 / −∞; its rows of O and LSE are written
 * into the output blobs; then the q-blocks are marked reduced and their partials deleted (only
 * once marked, so a run cut off before is redone from the same partials). Run by the tile job
 * that records a split q-block's last part (worker.ts), and by the reducer for any q-block still
 * unmarked when its reduce job runs (docs/flow.md). A split q-block's partials are one blob per run
 * of tiles (blob-layout.ts), named by the runs' first tiles: `firsts` (from recordDone) where the
 * caller has them, else read from the job's hash (`r:<q-block>`, one round trip for all); the mark
 * deletes those fields. `throttleMs`: sleep before each q-block (fault tests).
 * Returns how many q-blocks it merged and the job's state read right after marking them ('' when
 * the job is gone; undefined when `qis` is empty), so a worker sees a cancel that landed during the
 * merge without another round trip.
 */
export async function mergeQBlocks(
  ctx: JobContext,
  redis: Redis,
  qis: readonly number[],
  throttleMs = 0,
  firsts: ReadonlyMap<number, readonly number[]> = new Map(),
): Promise<{ merged: number; state: string | undefined }> {
  const { id, spec } = ctx.manifest;
  const { H, Sq } = spec;
  const D = lseOnly(ctx.manifest) ? 0 : spec.D; // an inspect job's LSE pass: partials [rows, 0] + lse, no O
  for (const qi of qis)
    if (!Number.isInteger(qi) || qi < 0 || qi >= ctx.plan.qBlockCount)
      throw new StrayJobError(`job ${id}: q-block ${qi} is not in its plan`);
  const split = qis.filter((qi) => ctx.plan.tilesIn(qi) > 0);
  const runsOf = await splitFirsts(redis, id, split, firsts);
  const consumed: { names: string[]; bytes: number[] } = { names: [], bytes: [] };
  /** Buffers taken from mergePool for the q-block being merged (fs store only), given back once its rows are written. */
  const lent: Float32Array[] = [];
  for (const qi of qis) {
    if (throttleMs) await sleep(throttleMs);
    const block = ctx.plan.block(qi);
    let result: TilePartial;
    if (block.tiles.length === 0) {
      result = emptyPartial(block.rows, D, 0);
    } else {
      const starts = checkedFirsts(id, qi, runsOf.get(qi)!, block.tiles.length);
      const runs = starts.map((from, r) => block.tiles.slice(from, starts[r + 1] ?? block.tiles.length));
      const names = runs.map((run) => blobNames.partial(id, qi, run[0]!.kBlock));
      const sizes = runs.map((run) => run.length * packedBytes(block.rows, D));
      const blobs = await readParts(ctx.store, id, names, sizes, lent);
      const partials = blobs.flatMap((blob, r) => unpackPartials(blob, runs[r]!, D));
      // Same merge() into kept arrays where the store copies what it writes (fs): the same bits, no fresh rows.
      result = merge(partials, lent.length > 0 ? outputFor(block.rows, D, lent) : undefined);
      checkMergedRows(spec, block, result); // throws ScoreOverflowError: the job fails, no NaN written
      consumed.names.push(...names);
      consumed.bytes.push(...sizes);
    }
    const row = (block.b * H + block.h) * Sq + block.qStart;
    await Promise.all([
      ...(D > 0 ? [ctx.store.write(blobNames.out(id), row * D * 4, f32Bytes(result.o))] : []),
      ctx.store.write(blobNames.lse(id), row * 4, f32Bytes(result.lse)),
    ]);
    for (const buffer of lent.splice(0)) mergePool.give(buffer); // written: nothing reads them any more
  }
  if (qis.length === 0) return { merged: 0, state: undefined };
  // The mark, its runs' fields gone, and the job's state in one round trip (a pipeline: in order on one connection).
  const mark = redis.pipeline().sadd(jobKeys.reduced(id), ...qis.map(String));
  if (split.length > 0) mark.hdel(jobKeys.hash(id), ...split.map((qi) => `r:${qi}`));
  const replies = await mark.hget(jobKeys.hash(id), 'state').exec();
  for (const [error] of replies ?? []) if (error) throw error;
  const state = (replies?.at(-1)?.[1] as string | null | undefined) ?? '';
  if (consumed.names.length > 0) await ctx.store.delete(consumed.names, consumed.bytes);
  return { merged: qis.length, state };
}

/** The runs' first tiles of split q-blocks `qis`: as given, else from the job's hash (`r:<q-block>`, recordDone). */
async function splitFirsts(
  redis: Redis,
  id: string,
  qis: readonly number[],
  given: ReadonlyMap<number, readonly number[]>,
): Promise<Map<number, readonly number[]>> {
  const out = new Map<number, readonly number[]>();
  const missing = qis.filter((qi) => {
    const known = given.get(qi);
    if (known) out.set(qi, known);
    return !known;
  });
  if (missing.length === 0) return out;
  const fields = await redis.hmget(jobKeys.hash(id), ...missing.map((qi) => `r:${qi}`));
  missing.forEach((qi, i) => {
    const field = fields[i];
    if (field == null) throw new RetryableJobError(`job ${id}: q-block ${qi}: no run of its tiles is recorded`);
    out.set(qi, runFirsts(field));
  });
  return out;
}

/** A q-block's runs' first tiles (ascending), checked to start at 0 and to rise inside its `tiles` tiles. */
function checkedFirsts(id: string, qi: number, firsts: readonly number[], tiles: number): readonly number[] {
  const ok = firsts[0] === 0 && firsts.every((f, i) => Number.isInteger(f) && f < tiles && (i === 0 || f > firsts[i - 1]!));
  if (!ok) throw new RetryableJobError(`job ${id}: q-block ${qi}: its recorded runs (${firsts.join(',')}) do not cover its ${tiles} tiles`);
  return firsts;
}

/**
 * Kept buffers for partials read back (one per part) and merged rows, shared by the merges a
 * process runs at once (buffer-pool.ts): 16 of up to 2 MiB each, enough for two q-blocks of ~6
 * parts at once at the control bench's 64-worker shape (768 KB parts).
 */
const mergePool = new BufferPool(16, 1 << 19);

/**
 * The blobs of a q-block's runs, checked: each there and of its expected size, else
 * RetryableJobError. On the fs store each is read straight into a kept buffer (one `lent` more per
 * blob), and looked up after its read: a part found there after the read was there whole when
 * read (a run's blob is put whole by rename, and only deleted once its q-block is marked reduced,
 * after which no retry stores it again), while one gone by then may have read as zeros. Other
 * stores: one getMany (one round trip on Redis), fresh memory.
 */
async function readParts(
  store: BlobStore,
  id: string,
  names: readonly string[],
  sizes: readonly number[],
  lent: Float32Array[],
): Promise<Float32Array[]> {
  const missing = (r: number) => new RetryableJobError(`job ${id}: partial ${names[r]} is missing`);
  const wrongSize = (r: number, bytes: number) =>
    new RetryableJobError(`job ${id}: partial ${names[r]} holds ${bytes} bytes, expected ${sizes[r]}`);
  if (!(store instanceof FsBlobStore)) {
    const blobs = await store.getMany(names, sizes);
    return blobs.map((blob, r) => {
      if (!blob) throw missing(r);
      if (blob.byteLength !== sizes[r]) throw wrongSize(r, blob.byteLength);
      return bytesToF32(blob);
    });
  }
  const out: Float32Array[] = [];
  for (const [r, name] of names.entries()) {
    const floats = mergePool.take(sizes[r]! / 4);
    lent.push(floats);
    await store.readInto(name, 0, f32Bytes(floats));
    const header = await store.header(name);
    if (!header) throw missing(r);
    if (header.size !== sizes[r]) throw wrongSize(r, header.size);
    out.push(floats);
  }
  return out;
}

/** Merged rows' arrays ([rows, D] and [rows]) in one kept buffer (lent until the rows are written). */
function outputFor(rows: number, D: number, lent: Float32Array[]): { o: Float32Array; lse: Float32Array } {
  const floats = mergePool.take(rows * (D + 1));
  lent.push(floats);
  return { o: floats.subarray(0, rows * D), lse: floats.subarray(rows * D) };
}
