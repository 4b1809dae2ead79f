import { hostname } from 'node:os';
import { checkMergedRows, emptyPartial, merge, type TilePartial } from '@longattn/attention';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { bytesToF32, f32Bytes } from '../blobs/blob-store.ts';
import { planLimits, type PlanLimits } from '../limits.ts';
import { packedBytes, unpackPartials } from '../packed.ts';
import { QUEUE_DEFAULTS } from './config.ts';
import { bullConnection, checkReachable, connectRedis } from './connection.ts';
import type { ReduceJobData, RootJobData } from './flow.ts';
import { JobContexts, type JobContext } from './job-context.ts';
import { blobNames, jobKeys, QUEUE_PREFIX, QUEUES } from './names.ts';
import { recordingFailures, sleep, type RunningService } from './service.ts';

export interface ReducerServiceOptions {
  redis: string;
  /** Reduce jobs handled at once (merges are short; more overlaps their I/O). Default 2. */
  concurrency?: number;
  /** Sleep before each q-block merge (fault tests and demos). */
  throttleMs?: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Planning limits a manifest must keep (docs/limits.md); default planLimits() (environment). */
  limits?: Partial<PlanLimits>;
  log?: (line: string) => void;
}

/**
 * Finishes each q-block of a reduce job that is not marked reduced yet: whole q-blocks were
 * merged and written by their tile job, which marked them, so only q-blocks split across tile
 * jobs and fully masked ones are left. A split q-block is merged exactly as computeQBlock does
 * (merge() of all its tiles' partials, which sorts them by kStart) and its rows of O and LSE are
 * written into the output blobs; then the q-blocks are marked reduced and their partials
 * deleted. A retried job skips reduced q-blocks and redoes the others (their partials are
 * deleted only once they are marked).
 */
async function reduceBlocks(
  ctx: JobContext,
  data: ReduceJobData,
  redis: ReturnType<typeof connectRedis>,
  throttleMs: number,
): Promise<number> {
  const { id, spec } = ctx.manifest;
  const { D, H, Sq } = spec;
  const reducedKey = jobKeys.reduced(id);
  const state = await redis.hget(jobKeys.hash(id), 'state');
  if (state !== 'queued') throw new UnrecoverableError(`job ${id} is ${state ?? 'gone'}`);
  const range = Array.from({ length: data.to - data.from }, (_, i) => String(data.from + i));
  const reduced = range.length > 0 ? await redis.smismember(reducedKey, ...range) : [];
  const done: number[] = [];
  const consumed: { names: string[]; bytes: number }[] = [];
  for (let qi = data.from; qi < data.to; qi++) {
    if (reduced[qi - data.from] === 1) continue;
    if (throttleMs) await sleep(throttleMs);
    if (!Number.isInteger(qi) || qi < 0 || qi >= ctx.plan.qBlockCount)
      throw new UnrecoverableError(`job ${id}: q-block ${qi} is not in its plan`);
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
        if (!blob) throw new Error(`job ${id}: partial ${names[t]} is missing`);
        return unpackPartials(bytesToF32(blob), [block.tiles[t]!], D)[0]!;
      });
      result = merge(partials);
      checkMergedRows(spec, block, result); // throws ScoreOverflowError: the job fails, no NaN written
    }
    const row = (block.b * H + block.h) * Sq + block.qStart;
    await Promise.all([
      ctx.store.write(blobNames.out(id), row * D * 4, f32Bytes(result.o)),
      ctx.store.write(blobNames.lse(id), row * 4, f32Bytes(result.lse)),
    ]);
    done.push(qi);
    consumed.push({ names, bytes });
  }
  if (done.length === 0) return 0;
  await redis.sadd(reducedKey, ...done.map(String));
  const names = consumed.flatMap((c) => c.names);
  await ctx.store.delete(
    names,
    consumed.flatMap((c) => c.names.map(() => c.bytes)),
  );
  return done.length;
}

/**
 * Finalise: every q-block reduced → seal O ([B,H,Sq,D] bhsd float32; downloads give it Q's
 * shape and layout) and LSE ([B,H,Sq]), delete the inputs, mark the job done.
 */
async function finalise(ctx: JobContext, redis: ReturnType<typeof connectRedis>): Promise<{ done: true }> {
  const { id, spec, qBlockCount } = ctx.manifest;
  const hash = jobKeys.hash(id);
  const state = await redis.hget(hash, 'state');
  if (state === 'done') return { done: true };
  if (state !== 'queued') throw new UnrecoverableError(`job ${id} is ${state ?? 'gone'}`);
  const reduced = await redis.scard(jobKeys.reduced(id));
  if (reduced !== qBlockCount) throw new Error(`job ${id}: ${reduced} of ${qBlockCount} q-blocks reduced`);
  const { B, H, Sq, D } = spec;
  await ctx.store.seal(blobNames.out(id), { size: B * H * Sq * D * 4, meta: { dtype: 'f32', shape: [B, H, Sq, D], layout: 'bhsd' } });
  await ctx.store.seal(blobNames.lse(id), { size: B * H * Sq * 4, meta: { dtype: 'f32', shape: [B, H, Sq] } });
  await ctx.store.deletePrefix(`${id}/in/`);
  await ctx.store.deletePrefix(`${id}/p/`);
  await redis.multi().hset(hash, 'state', 'done', 'finishedAt', String(Date.now())).del(jobKeys.reduced(id), jobKeys.records(id)).exec();
  return { done: true };
}

/** The reducer service: reduce jobs (q-block merges) and the root finalise jobs. */
export async function startReducer(options: ReducerServiceOptions): Promise<RunningService> {
  await checkReachable(options.redis);
  const log = options.log ?? (() => {});
  const id = `reducer-${hostname()}-${process.pid}`;
  const redis = connectRedis(options.redis);
  const contexts = new JobContexts(redis, options.redis, planLimits(options.limits));
  const common = {
    connection: bullConnection(options.redis),
    prefix: QUEUE_PREFIX,
    name: id,
    lockDuration: options.lockDurationMs ?? QUEUE_DEFAULTS.lockDurationMs,
    stalledInterval: options.stalledIntervalMs ?? QUEUE_DEFAULTS.stalledIntervalMs,
    maxStalledCount: QUEUE_DEFAULTS.maxStalledCount,
  };
  const reduceWorker = new Worker<ReduceJobData>(
    QUEUES.reduce,
    recordingFailures(redis, async (job: Job<ReduceJobData>) => ({
      merged: await reduceBlocks(await contexts.get(job.data.job), job.data, redis, options.throttleMs ?? 0),
    })),
    { ...common, concurrency: options.concurrency ?? 2 },
  );
  const rootWorker = new Worker<RootJobData>(
    QUEUES.jobs,
    recordingFailures(redis, async (job: Job<RootJobData>) => finalise(await contexts.get(job.data.job), redis)),
    { ...common, concurrency: 1 },
  );
  for (const w of [reduceWorker, rootWorker]) {
    w.on('error', (error) => log(`${id}: ${error.message}`));
    w.on('failed', (job, error) => log(`${id}: ${job?.name ?? 'job'} ${job?.id ?? '?'} failed: ${error.message}`));
  }
  await Promise.all([reduceWorker.waitUntilReady(), rootWorker.waitUntilReady()]);
  const description = `${id}: queues ${QUEUE_PREFIX}:${QUEUES.reduce} and ${QUEUE_PREFIX}:${QUEUES.jobs}`;
  log(description);
  let closing: Promise<void> | undefined;
  return {
    id,
    description,
    close() {
      closing ??= (async () => {
        try {
          await Promise.all([reduceWorker.close(), rootWorker.close()]);
        } finally {
          await contexts.close();
          await redis.quit().catch(() => redis.disconnect());
        }
      })();
      return closing;
    },
  };
}
