import type { Job } from 'bullmq';
import { DelayedError } from 'bullmq';
import type { Redis } from 'ioredis';
import { JobCancelledError, StrayJobError } from '../errors.ts';
import type { ChunkRef } from '../inspect/chunk.ts';
import { chunksOf } from '../inspect/report.ts';
import { QUEUE_DEFAULTS } from './config.ts';
import type { ChunkTask } from './chunk-thread.ts';
import type { ChunkJobData } from './inspect-flow.ts';
import { chunkFlops } from './inspect-flow.ts';
import { contextOrDecline, type JobContext } from './job-context.ts';
import { blobNames, checkJobId, flowIds, jobKeys } from './names.ts';
import { cleanUpAfterEnd } from './tile-job.ts';
import type { WorkerParts } from './worker.ts';

/**
 * KEYS: job hash, chunks set. ARGV: worker field, its value, then per chunk (index, flops).
 * Counts each stored chunk once in the job's progress (tiles, computed, flops), only while queued;
 * the worker's field is kept when it computed tiles (its backend), else set to `inspect|…`.
 */
const RECORD_CHUNKS = `
if redis.call('HGET', KEYS[1], 'state') ~= 'queued' then return 0 end
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
for i = 3, #ARGV, 2 do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    redis.call('HINCRBY', KEYS[1], 'tiles', 1)
    redis.call('HINCRBY', KEYS[1], 'computed', 1)
    redis.call('HINCRBY', KEYS[1], 'flops', ARGV[i + 1])
  end
end
return 1`;

/**
 * A chunk job's chunks, checked against its job: an inspect job, an id `JOB-cN` with N below its
 * chunk-job count, a range inside its chunks. Anything else is a stray (StrayJobError).
 */
function checkChunkJob(job: Job<ChunkJobData>, ctx: JobContext): { index: number; chunk: ChunkRef }[] {
  const { id, inspect } = ctx.manifest;
  const stray = (why: string) => new StrayJobError(`chunk job ${String(job.id).slice(0, 80)} is not part of job ${id}: ${why}`);
  if (!inspect) throw stray('it is not an inspect job');
  const n = /^(.*)-c(\d+)$/.exec(String(job.id));
  if (!n || n[1] !== id || Number(n[2]) >= inspect.chunkJobs || flowIds.chunk(id, Number(n[2])) !== job.id)
    throw stray('not one of its chunk-job ids');
  const { from, to } = job.data;
  if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from >= 0 && from < to && to <= inspect.chunks))
    throw stray(`chunks [${String(from).slice(0, 20)}, ${String(to).slice(0, 20)}) are not in its plan`);
  const all = chunksOf(ctx.manifest.spec);
  return Array.from({ length: to - from }, (_, i) => ({ index: from + i, chunk: all[from + i]! }));
}

/** Records the chunks' progress (once each) and the worker's field. */
async function recordChunks(redis: Redis, ctx: JobContext, worker: string, chunks: { index: number; chunk: ChunkRef }[]): Promise<void> {
  const { id, spec } = ctx.manifest;
  const args = chunks.flatMap(({ index, chunk }) => [String(index), String(chunkFlops(spec, chunk))]);
  await redis.eval(RECORD_CHUNKS, 2, jobKeys.hash(id), jobKeys.chunks(id), `w:${worker}`, 'inspect|float64 statistics (js)', ...args);
}

/**
 * One chunk job of an inspect job's statistics pass: checked, then the chunks whose result is not
 * stored yet (a retry skips the others) are computed by a chunk thread, recorded, and — if the
 * job ended meanwhile — its late blobs deleted.
 */
export async function processChunkJob(w: WorkerParts, job: Job<ChunkJobData>, token: string | undefined): Promise<{ chunks: number }> {
  const jobId = checkJobId(job.data?.job, 'job');
  const ctx = await contextOrDecline(w.contexts, w.redis, job, token, w.id);
  const chunks = checkChunkJob(job, ctx);
  const state = await w.states.get(jobId);
  if (state !== 'queued') throw new JobCancelledError(`job ${jobId} is ${state ?? 'gone'}`);
  const stored = await ctx.store.existsMany(chunks.map(({ index }) => blobNames.chunk(jobId, index)));
  const left = chunks.filter((_, i) => !stored[i]);
  const task: ChunkTask = {
    job: jobId,
    spec: ctx.manifest.spec,
    settings: ctx.manifest.inspect!.settings,
    store: ctx.store.location,
    redis: w.options.redis,
    cacheBytes: Math.floor((w.options.cacheBytes ?? QUEUE_DEFAULTS.cacheBytes) / w.threads),
    chunks: left,
  };
  if (left.length > 0) {
    if (!w.started.has(jobId)) {
      await w.redis.hsetnx(jobKeys.hash(jobId), 'startedAt', String(Date.now()));
      w.started.add(jobId);
    }
    try {
      await w.chunkPool.run(task, { signal: w.handBack.signal });
    } catch (error) {
      if (!w.handBack.signal.aborted) throw error;
      await job.moveToDelayed(Date.now(), token); // shutting down past the grace period: hand it back
      throw new DelayedError();
    }
  }
  await recordChunks(w.redis, ctx, w.id, chunks);
  const stateNow = (await w.redis.hget(jobKeys.hash(jobId), 'state')) ?? '';
  if (await cleanUpAfterEnd(ctx, stateNow))
    throw new JobCancelledError(`job ${jobId} ended while chunk job ${job.id} ran; its blobs deleted`);
  return { chunks: left.length };
}
