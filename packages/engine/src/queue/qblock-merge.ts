import { checkMergedRows, emptyPartial, merge, type TilePartial } from '@longattn/attention';
import type { Redis } from 'ioredis';
import { bytesToF32, f32Bytes } from '../blobs/blob-store.ts';
import { RetryableJobError, StrayJobError } from '../errors.ts';
import { packedBytes, unpackPartials } from '../packed.ts';
import { lseOnly } from './inspect-manifest.ts';
import type { JobContext } from './job-context.ts';
import { blobNames, jobKeys } from './names.ts';
import { sleep } from './service.ts';

/**
 * Finishes q-blocks `qis` of a job (plan indices) that no tile job merged itself: a q-block split
 * across tile jobs is merged exactly as computeQBlock does (merge() of all its tiles' partials,
 * which sorts them by kStart), a fully masked one is 0 / −∞; its rows of O and LSE are written
 * into the output blobs; then the q-blocks are marked reduced and their partials deleted (only
 * once marked, so a run cut off before is redone from the same partials). Run by the tile job
 * that records a split q-block's last part (worker.ts), and by the reducer for any q-block still
 * unmarked when its reduce job runs (docs/flow.md). `throttleMs`: sleep before each q-block (fault tests).
 * Returns how many q-blocks it merged and the job's state read right after marking them ('' when
 * the job is gone; undefined when `qis` is empty), so a worker sees a cancel that landed during the
 * merge without another round trip.
 */
export async function mergeQBlocks(
  ctx: JobContext,
  redis: Redis,
  qis: readonly number[],
  throttleMs = 0,
): Promise<{ merged: number; state: string | undefined }> {
  const { id, spec } = ctx.manifest;
  const { H, Sq } = spec;
  const D = lseOnly(ctx.manifest) ? 0 : spec.D; // an inspect job's LSE pass: partials [rows, 0] + lse, no O
  const consumed: { names: string[]; bytes: number }[] = [];
  for (const qi of qis) {
    if (throttleMs) await sleep(throttleMs);
    if (!Number.isInteger(qi) || qi < 0 || qi >= ctx.plan.qBlockCount)
      throw new StrayJobError(`job ${id}: q-block ${qi} is not in its plan`);
    const block = ctx.plan.block(qi);
    const names = block.tiles.map((t) => blobNames.partial(id, qi, t.kBlock));
    const bytes = packedBytes(block.rows, D);
    let result: TilePartial;
    if (names.length === 0) {
      result = emptyPartial(block.rows, D, 0);
    } else {
      const blobs = await ctx.store.getMany(
        names,
        names.map(() => bytes),
      );
      const partials = blobs.map((blob, t) => {
        if (!blob) throw new RetryableJobError(`job ${id}: partial ${names[t]} is missing`);
        if (blob.byteLength !== bytes)
          throw new RetryableJobError(`job ${id}: partial ${names[t]} holds ${blob.byteLength} bytes, expected ${bytes}`);
        return unpackPartials(bytesToF32(blob), [block.tiles[t]!], D)[0]!;
      });
      result = merge(partials);
      checkMergedRows(spec, block, result); // throws ScoreOverflowError: the job fails, no NaN written
    }
    const row = (block.b * H + block.h) * Sq + block.qStart;
    await Promise.all([
      ...(D > 0 ? [ctx.store.write(blobNames.out(id), row * D * 4, f32Bytes(result.o))] : []),
      ctx.store.write(blobNames.lse(id), row * 4, f32Bytes(result.lse)),
    ]);
    consumed.push({ names, bytes });
  }
  if (qis.length === 0) return { merged: 0, state: undefined };
  // The mark and the job's state in one round trip (a pipeline: in order on one connection).
  const replies = await redis
    .pipeline()
    .sadd(jobKeys.reduced(id), ...qis.map(String))
    .hget(jobKeys.hash(id), 'state')
    .exec();
  for (const [error] of replies ?? []) if (error) throw error;
  const state = (replies?.[1]?.[1] as string | null | undefined) ?? '';
  await ctx.store.delete(
    consumed.flatMap((c) => c.names),
    consumed.flatMap((c) => c.names.map(() => c.bytes)),
  );
  return { merged: qis.length, state };
}
