import { checkMergedRows, emptyPartial, merge, type TilePartial } from '@longattn/attention';
import type { Redis } from 'ioredis';
import { bytesToF32, f32Bytes } from '../blobs/blob-store.ts';
import { RetryableJobError, StrayJobError } from '../errors.ts';
import { packedBytes, unpackPartials } from '../packed.ts';
import { lseOnly } from './inspect-manifest.ts';
import type { JobContext } from './job-context.ts';
import { blobNames, jobKeys } from './names.ts';
import { runFirsts } from './progress.ts';
import { sleep } from './service.ts';

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
      const blobs = await ctx.store.getMany(names, sizes);
      const partials = blobs.flatMap((blob, r) => {
        if (!blob) throw new RetryableJobError(`job ${id}: partial ${names[r]} is missing`);
        if (blob.byteLength !== sizes[r])
          throw new RetryableJobError(`job ${id}: partial ${names[r]} holds ${blob.byteLength} bytes, expected ${sizes[r]}`);
        return unpackPartials(bytesToF32(blob), runs[r]!, D);
      });
      result = merge(partials);
      checkMergedRows(spec, block, result); // throws ScoreOverflowError: the job fails, no NaN written
      consumed.names.push(...names);
      consumed.bytes.push(...sizes);
    }
    const row = (block.b * H + block.h) * Sq + block.qStart;
    await Promise.all([
      ...(D > 0 ? [ctx.store.write(blobNames.out(id), row * D * 4, f32Bytes(result.o))] : []),
      ctx.store.write(blobNames.lse(id), row * 4, f32Bytes(result.lse)),
    ]);
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
