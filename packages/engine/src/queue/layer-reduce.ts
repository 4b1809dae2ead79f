import type { FlowJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { JobCancelledError, RetryableJobError } from '../errors.ts';
import { batchPlan } from './batching.ts';
import { QUEUE_DEFAULTS } from './config.ts';
import { buildFlow } from './flow.ts';
import type { JobContext } from './job-context.ts';
import { buildLayerFlow, projectRanges } from './layer-flow.ts';
import { blobNames, jobKeys } from './names.ts';
import { sealInput } from './transfer.ts';

/**
 * The reducer's side of a layer job (docs/flow.md, "Layers on the queue"): three roots on the
 * jobs queue, each run once its stage's children are done, each adding the next stage's flow
 * while it holds its lock (so a cancel, removing the roots in flowIds.roots order, orphans none).
 * They only seal, delete and add flows: every row is computed by workers.
 */

/** Throws unless the job is still queued; true when it is done already (a retried root). */
async function stillQueued(redis: Redis, id: string): Promise<boolean> {
  const state = await redis.hget(jobKeys.hash(id), 'state');
  if (state === 'done') return false;
  if (state !== 'queued') throw new JobCancelledError(`job ${id} is ${state ?? 'gone'}`);
  return true;
}

/** Throws (retried) unless `count` projection blocks are recorded (the first stage's, or all). */
async function checkProjected(redis: Redis, ctx: JobContext, count: number): Promise<void> {
  const { id } = ctx.manifest;
  const projected = await redis.scard(jobKeys.projected(id));
  if (projected !== count) throw new RetryableJobError(`job ${id}: ${projected} of ${count} projection blocks written`);
}

/**
 * Root `layer-in` (JOB-p): every K/V and Q block projected → seals Q, K, V (the blobs the tile
 * jobs read, as an uploaded job's), deletes X and Xkv, and adds the attention flow, batched as
 * submit counted it.
 */
export async function startLayerAttention(ctx: JobContext, redis: Redis, addFlow: (flow: FlowJob) => Promise<unknown>): Promise<object> {
  const { id, spec, blockQ, layer } = ctx.manifest;
  if (!(await stillQueued(redis, id))) return { done: true };
  const { firstBlocks } = projectRanges(spec, blockQ, layer!);
  await checkProjected(redis, ctx, firstBlocks);
  const groups = batchPlan(ctx.plan, layer!.batch);
  const tileJobs = groups.reduce((n, g) => n + g.tileJobs.length, 0);
  if (tileJobs !== ctx.manifest.tileJobs || groups.length !== ctx.manifest.reduceJobs)
    throw new RetryableJobError(`job ${id}: ${tileJobs} tile jobs planned, manifest says ${ctx.manifest.tileJobs}`);
  for (const [which, heads, seq] of [
    ['q', spec.H, spec.Sq],
    ['k', spec.Hk, spec.Sk],
    ['v', spec.Hk, spec.Sk],
  ] as const)
    await sealInput(ctx.store, blobNames.input(id, which), spec, heads, seq); // sealing again keeps the bytes (a retried root)
  await ctx.store.delete([blobNames.layerInput(id, 'x'), blobNames.layerInput(id, 'xkv')]);
  await redis.hsetnx(jobKeys.hash(id), 'attentionAt', String(Date.now()));
  await addFlow(buildFlow(id, groups));
  return { attention: true };
}

/**
 * The attention flow's finalise for a layer job (every q-block reduced): seals O and LSE (kept:
 * --attn-out and the result), deletes Q, K, V and partials, and adds the o_proj stage.
 */
export async function startLayerOut(ctx: JobContext, redis: Redis, addFlow: (flow: FlowJob) => Promise<unknown>): Promise<object> {
  const { id, spec, blockQ, layer } = ctx.manifest;
  const { B, H, Sq, D } = spec;
  const { last } = projectRanges(spec, blockQ, layer!);
  if (last.length !== layer!.outJobs)
    throw new RetryableJobError(`job ${id}: ${last.length} o_proj jobs planned, manifest says ${layer!.outJobs}`);
  const o = { size: B * H * Sq * D * 4, meta: { dtype: 'f32', shape: [B, H, Sq, D], layout: 'bhsd' } };
  await ctx.store.seal(blobNames.out(id), o);
  await ctx.store.seal(blobNames.lse(id), { size: B * H * Sq * 4, meta: { dtype: 'f32', shape: [B, H, Sq] } });
  await ctx.store.delete([blobNames.input(id, 'q'), blobNames.input(id, 'k'), blobNames.input(id, 'v')]);
  await ctx.store.deletePrefix(`${id}/p/`);
  await redis.hsetnx(jobKeys.hash(id), 'outAt', String(Date.now()));
  await addFlow(buildLayerFlow(id, 'out', last, layer!.inJobs));
  return { layerOut: true };
}

/** Root `layer-out` (JOB-y): every block projected → seals Y, deletes the weights, marks the job done. */
export async function finishLayer(ctx: JobContext, redis: Redis): Promise<{ done: true }> {
  const { id, spec, blockQ, layer } = ctx.manifest;
  if (!(await stillQueued(redis, id))) return { done: true };
  const { blocks } = projectRanges(spec, blockQ, layer!);
  await checkProjected(redis, ctx, blocks.length);
  const { B, Sq } = spec;
  const y = { size: B * Sq * layer!.outDim * 4, meta: { dtype: 'f32', shape: [B, Sq, layer!.outDim] } };
  await ctx.store.seal(blobNames.layerOut(id), y);
  await ctx.store.deletePrefix(`${id}/in/`);
  const hash = jobKeys.hash(id);
  await redis
    .multi()
    .hset(hash, 'state', 'done', 'finishedAt', String(Date.now()))
    .expire(hash, QUEUE_DEFAULTS.keepFinishedSeconds)
    .del(jobKeys.reduced(id), jobKeys.records(id), jobKeys.projected(id))
    .exec();
  return { done: true };
}
