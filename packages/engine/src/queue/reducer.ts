import { hostname } from 'node:os';
import { InputError } from '@longattn/tensor';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { BlobLocations } from '../blobs/locations.ts';
import { JobCancelledError, RetryableJobError, StrayJobError } from '../errors.ts';
import { planLimits, type PlanLimits } from '../limits.ts';
import { QUEUE_DEFAULTS } from './config.ts';
import { bullConnection, checkReachable, connectRedis } from './connection.ts';
import type { ReduceJobData, RootJobData } from './flow.ts';
import { finishInspect, InspectFlows, startInspectPass } from './inspect-reduce.ts';
import { JobContexts, type JobContext } from './job-context.ts';
import { finishLayer, startLayerAttention, startLayerOut } from './layer-reduce.ts';
import { blobNames, checkJobId, flowIds, jobKeys, QUEUE_PREFIX, QUEUES } from './names.ts';
import { mergeQBlocks } from './qblock-merge.ts';
import { decline, recordingFailures, type RunningService } from './service.ts';
import { startSweeper } from './sweep.ts';

export interface ReducerServiceOptions {
  redis: string;
  /** Reduce jobs handled at once (merges are short; more overlaps their I/O). Default 2. */
  concurrency?: number;
  /** Blob stores it may open besides the queue's Redis (`--blobs`, LONGATTN_BLOBS); it also sweeps them. */
  blobs?: readonly string[];
  /** How often it deletes the blobs of expired, failed and cancelled jobs (QUEUE_DEFAULTS.sweepIntervalMs). */
  sweepIntervalMs?: number;
  /** Sleep before each q-block merge (fault tests and demos). */
  throttleMs?: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Planning limits a manifest must keep (docs/limits.md); default planLimits() (environment). */
  limits?: Partial<PlanLimits>;
  log?: (line: string) => void;
}

/**
 * A reduce job: every q-block of [from, to) not marked reduced yet is merged and written
 * (mergeQBlocks). Whole q-blocks were written by their tile job, and a split q-block by the tile
 * job that recorded its last part; both marked them, so what is left is fully masked q-blocks and
 * split ones whose last part's worker stopped (or ran with --no-merge) before merging. A retried
 * job skips reduced q-blocks and redoes the others.
 */
async function reduceBlocks(ctx: JobContext, data: ReduceJobData, redis: Redis, throttleMs: number): Promise<number> {
  const { id } = ctx.manifest;
  const state = await redis.hget(jobKeys.hash(id), 'state');
  if (state !== 'queued') throw new JobCancelledError(`job ${id} is ${state ?? 'gone'}`);
  if (
    !(
      Number.isSafeInteger(data.from) &&
      Number.isSafeInteger(data.to) &&
      data.from >= 0 &&
      data.from <= data.to &&
      data.to <= ctx.plan.qBlockCount
    )
  )
    throw new StrayJobError(`reduce job for q-blocks [${String(data.from)}, ${String(data.to)}) is not part of job ${id}`);
  const range = Array.from({ length: data.to - data.from }, (_, i) => data.from + i);
  const reduced = range.length > 0 ? await redis.smismember(jobKeys.reduced(id), ...range.map(String)) : [];
  const { merged } = await mergeQBlocks(
    ctx,
    redis,
    range.filter((_, i) => reduced[i] !== 1),
    throttleMs,
  );
  return merged;
}

/**
 * Finalise: every q-block reduced → seal O ([B,H,Sq,D] bhsd float32; downloads give it Q's
 * shape and layout) and LSE ([B,H,Sq]), delete the inputs, mark the job done.
 */
async function finalise(ctx: JobContext, redis: Redis, flows: InspectFlows): Promise<object> {
  const { id, spec, qBlockCount } = ctx.manifest;
  const hash = jobKeys.hash(id);
  const state = await redis.hget(hash, 'state');
  if (state === 'done') return { done: true };
  if (state !== 'queued') throw new JobCancelledError(`job ${id} is ${state ?? 'gone'}`);
  const reduced = await redis.scard(jobKeys.reduced(id));
  if (reduced !== qBlockCount) throw new RetryableJobError(`job ${id}: ${reduced} of ${qBlockCount} q-blocks reduced`);
  if (ctx.manifest.inspect) return startInspectPass(ctx, redis, flows); // the LSE pass of an inspect job is done
  if (ctx.manifest.layer) return startLayerOut(ctx, redis, (flow) => flows.addFlow(flow)); // a layer's o_proj stage follows
  const { B, H, Sq, D } = spec;
  await ctx.store.seal(blobNames.out(id), { size: B * H * Sq * D * 4, meta: { dtype: 'f32', shape: [B, H, Sq, D], layout: 'bhsd' } });
  await ctx.store.seal(blobNames.lse(id), { size: B * H * Sq * 4, meta: { dtype: 'f32', shape: [B, H, Sq] } });
  await ctx.store.deletePrefix(`${id}/in/`);
  await ctx.store.deletePrefix(`${id}/p/`);
  // The record (and with it the result's blobs, see sweep.ts) now lives keepFinishedSeconds.
  await redis
    .multi()
    .hset(hash, 'state', 'done', 'finishedAt', String(Date.now()))
    .expire(hash, QUEUE_DEFAULTS.keepFinishedSeconds)
    .del(jobKeys.reduced(id), jobKeys.records(id))
    .exec();
  return { done: true };
}

/** The reducer service: reduce jobs (q-block merges) and the root finalise jobs. */
export async function startReducer(options: ReducerServiceOptions): Promise<RunningService> {
  await checkReachable(options.redis);
  const log = options.log ?? (() => {});
  const id = `reducer-${hostname()}-${process.pid}`;
  const redis = connectRedis(options.redis);
  const locations = new BlobLocations(options.blobs);
  const contexts = new JobContexts(redis, options.redis, locations, planLimits(options.limits));
  const flows = new InspectFlows(options.redis);
  /** The job's context, or a decline when its blob store is not one this reducer was given. */
  const contextOr = async (job: Job<{ job: string }>, token: string | undefined) => {
    try {
      return await contexts.get(checkJobId(job.data?.job, 'job'));
    } catch (error) {
      if (error instanceof InputError && error.argument === '--blobs') return decline(redis, job, token, id, error.message.slice(9));
      throw error;
    }
  };
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
    recordingFailures(redis, async (job: Job<ReduceJobData>, token) => {
      const ctx = await contextOr(job, token);
      if (job.id !== flowIds.reduce(ctx.manifest.id, Number(/-r(\d+)$/.exec(String(job.id))?.[1] ?? -1)))
        throw new StrayJobError(`reduce job ${String(job.id).slice(0, 80)} is not part of job ${ctx.manifest.id}`);
      return { merged: await reduceBlocks(ctx, job.data, redis, options.throttleMs ?? 0) };
    }),
    { ...common, concurrency: options.concurrency ?? 2 },
  );
  const rootWorker = new Worker<RootJobData>(
    QUEUES.jobs,
    recordingFailures(redis, async (job: Job<RootJobData>, token) => {
      const ctx = await contextOr(job, token);
      // The jobs queue holds finalise jobs (id JOB), inspect jobs' statistics-pass roots (JOB-i) and
      // layer jobs' projection-stage roots (JOB-p, JOB-y).
      const kind =
        (job.name === 'inspect' && ctx.manifest.inspect) || ((job.name === 'layer-in' || job.name === 'layer-out') && ctx.manifest.layer)
          ? job.name
          : 'finalise';
      const ids: Record<string, (id: string) => string> = {
        inspect: flowIds.inspect,
        'layer-in': flowIds.layerIn,
        'layer-out': flowIds.layerOut,
        finalise: flowIds.root,
      };
      if (job.id !== ids[kind]!(ctx.manifest.id))
        throw new StrayJobError(`${job.name} job ${String(job.id).slice(0, 80)} is not job ${ctx.manifest.id}'s`);
      if (kind === 'inspect') return finishInspect(ctx, redis);
      if (kind === 'layer-in') return startLayerAttention(ctx, redis, (flow) => flows.addFlow(flow));
      if (kind === 'layer-out') return finishLayer(ctx, redis);
      return finalise(ctx, redis, flows);
    }),
    { ...common, concurrency: 1 },
  );
  for (const w of [reduceWorker, rootWorker]) {
    w.on('error', (error) => log(`${id}: ${error.message}`));
    w.on('failed', (job, error) => log(`${id}: ${job?.name ?? 'job'} ${job?.id ?? '?'} failed: ${error.message}`));
  }
  await Promise.all([reduceWorker.waitUntilReady(), rootWorker.waitUntilReady()]);
  const sweeper = startSweeper(redis, options.redis, locations, options.sweepIntervalMs ?? QUEUE_DEFAULTS.sweepIntervalMs, log, id);
  const queues = `${QUEUE_PREFIX}:${QUEUES.reduce} and ${QUEUE_PREFIX}:${QUEUES.jobs}`;
  const description = `${id}: blobs ${locations.list().join(', ')}, queues ${queues}`;
  log(description);
  let closing: Promise<void> | undefined;
  return {
    id,
    description,
    close() {
      closing ??= (async () => {
        try {
          await sweeper.stop();
          await Promise.all([reduceWorker.close(), rootWorker.close()]);
        } finally {
          await Promise.all([contexts.close(), flows.close()]);
          await redis.quit().catch(() => redis.disconnect());
        }
      })();
      return closing;
    },
  };
}
