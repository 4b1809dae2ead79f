import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { refuseSoftware } from '@longattn/kernels';
import { Piscina } from 'piscina';
import { BlobLocations } from '../blobs/locations.ts';
import { JobCancelledError } from '../errors.ts';
import { BackendChoice } from './backend-choice.ts';
import { planLimits, type PlanLimits } from '../limits.ts';
import { QUEUE_DEFAULTS } from './config.ts';
import { bullConnection, checkReachable, connectRedis } from './connection.ts';
import { processChunkJob } from './chunk-job.ts';
import type { ProjectJobData } from './layer-flow.ts';
import { processProjectJob } from './project-job.ts';
import type { TileJobData } from './flow.ts';
import type { ChunkJobData } from './inspect-flow.ts';
import { contextOrDecline, JobContexts } from './job-context.ts';
import { LiveStates } from './live-state.ts';
import { checkJobId, jobKeys, QUEUE_PREFIX, QUEUES } from './names.ts';
import { recordDone } from './progress.ts';
import { mergeQBlocks } from './qblock-merge.ts';
import { decline, recordingFailures, type RunningService } from './service.ts';
import { kernelPool, runOnThread, TASKS_PER_THREAD, untilAborted } from './kernel-pool.ts';
import { checkTileJob, cleanUpAfterEnd, remainingWork } from './tile-job.ts';
import { lseOnly } from './inspect-manifest.ts';
import runTiles, { type ReadCounters, type TileTask } from './tile-thread.ts';

export interface WorkerServiceOptions {
  redis: string;
  /** Kernel threads, i.e. tiles computed at once. Default 1. */
  concurrency?: number;
  /** Jobs it computes: `auto` (default) any backend that runs here; a name, jobs on that backend only (BackendChoice). */
  backend?: string;
  /** Blob stores it may open besides the queue's Redis (`--blobs`, LONGATTN_BLOBS); jobs elsewhere are declined. */
  blobs?: readonly string[];
  /** Input-block LRU cache size, split between the kernel threads. */
  cacheBytes?: number;
  /** Sleep before each tile and once after a job's rows are written, in the kernel thread (fault tests and demos). */
  throttleMs?: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** SIGTERM: how long in-flight tiles may finish before they are handed back. */
  graceMs?: number;
  /** Planning limits a manifest must keep (docs/limits.md); default planLimits() (environment). */
  limits?: Partial<PlanLimits>;
  /** Let an accelerated backend run on a software renderer or the CPU (else startWorker refuses: InputError). */
  allowSoftware?: boolean;
  /** false: leave split q-blocks to the reducer (fault tests of its merges); default true, the tile job storing a q-block's last partials merges it. */
  mergeSplit?: boolean;
  log?: (line: string) => void;
}

const threadFile = new URL('./tile-thread.mjs', import.meta.url).href;
const chunkThreadFile = new URL('./chunk-thread.mjs', import.meta.url).href;

/** What a tile (or chunk) job needs from its worker. */
export interface WorkerParts {
  id: string;
  options: WorkerServiceOptions;
  threads: number;
  redis: Redis;
  contexts: JobContexts;
  locations: BlobLocations;
  choice: BackendChoice;
  states: LiveStates;
  /** The kernel threads; none for a backend whose tiles use no CPU (cpuFree: the wait kernel runs on the event loop). */
  pool: Piscina | undefined;
  /** Threads of inspect jobs' chunk jobs (chunk-job.ts), started when the first one comes. */
  chunkPool: Piscina;
  handBack: AbortController;
  started: Set<string>;
  /** Reads of all its tile jobs so far (logged every LOG_READS_MS and at close). */
  reads: ReadCounters & { flops: number };
  log: (line: string) => void;
}

/**
 * `ID: reads: B MiB of input blocks read, X MiB/GFLOP, cache H hits / M misses (R% hit), T s reading, G GFLOP, S s stalled, C s computing`:
 * the worker's data movement so far (docs/scaling.md, "Data movement"), logged at close and
 * every LOG_READS_MS while it computes.
 */
export function readsLine(id: string, r: ReadCounters & { flops: number }): string {
  const gflop = r.flops / 1e9;
  const lookups = r.hits + r.misses;
  return (
    `${id}: reads: ${(r.bytes / 2 ** 20).toFixed(1)} MiB of input blocks read, ` +
    `${gflop > 0 ? (r.bytes / 2 ** 20 / gflop).toFixed(3) : '0'} MiB/GFLOP, ` +
    `cache ${r.hits} hits / ${r.misses} misses (${lookups > 0 ? ((100 * r.hits) / lookups).toFixed(1) : '-'}% hit), ` +
    `${(r.readMs / 1000).toFixed(2)} s reading, ${gflop.toFixed(1)} GFLOP, ` +
    `${(r.stallMs / 1000).toFixed(2)} s stalled, ${(r.computeMs / 1000).toFixed(2)} s computing`
  );
}

/** How often a busy worker logs its reads line. */
const LOG_READS_MS = 60_000;

/**
 * One tile job: checked against its job (id, blob store, plan: a stray is rejected without
 * failing the job), declined when this worker cannot run the job's backend or open its store,
 * then what a previous attempt left is computed by a kernel thread, recorded, and — if the job
 * ended meanwhile — its late blobs deleted.
 */
async function processTileJob(
  w: WorkerParts,
  job: Job<TileJobData>,
  token: string | undefined,
): Promise<{ tiles: number; computed: number }> {
  const jobId = checkJobId(job.data?.job, 'job');
  const ctx = await contextOrDecline(w.contexts, w.redis, job, token, w.id);
  const work = checkTileJob(job, ctx);
  const state = await w.states.get(jobId);
  if (state !== 'queued') throw new JobCancelledError(`job ${jobId} is ${state ?? 'gone'}`);
  const choice = await w.choice.forJob(ctx.manifest.backend);
  if ('declined' in choice) return decline(w.redis, job, token, w.id, choice.declined);
  const { selection } = choice;
  const { blocks, tiles } = await remainingWork(w.redis, ctx, work, job.attemptsStarted);
  const computed = blocks.reduce((n, { block }) => n + block.tiles.length, 0) + tiles.length;
  if (computed === 0) return { tiles: work.tileCount, computed: 0 };
  if (!w.started.has(jobId)) {
    await w.redis.hsetnx(jobKeys.hash(jobId), 'startedAt', String(Date.now()));
    w.started.add(jobId);
  }
  const task: TileTask = {
    backend: selection.name,
    kernelOptions: selection.options,
    job: jobId,
    spec: ctx.manifest.spec,
    blockK: ctx.manifest.blockK,
    store: ctx.store.location,
    redis: w.options.redis,
    cacheBytes: Math.floor((w.options.cacheBytes ?? QUEUE_DEFAULTS.cacheBytes) / w.threads),
    blocks: blocks.map(({ block }) => block),
    tiles,
    throttleMs: w.options.throttleMs ?? 0,
    outputs: lseOnly(ctx.manifest) ? 'lse' : 'o+lse',
  };
  try {
    const reply = await (w.pool
      ? runOnThread<ReadCounters>(w.pool, task, w.handBack.signal)
      : untilAborted(runTiles(task), w.handBack.signal));
    w.reads.bytes += reply.bytes;
    w.reads.hits += reply.hits;
    w.reads.misses += reply.misses;
    w.reads.readMs += reply.readMs;
    w.reads.stallMs += reply.stallMs;
    w.reads.computeMs += reply.computeMs;
    w.reads.flops += blocks.reduce((n, { block }) => n + block.tiles.reduce((f, t) => f + t.flops, 0), 0);
    w.reads.flops += tiles.reduce((n, { tile }) => n + tile.flops, 0);
  } catch (error) {
    if (!w.handBack.signal.aborted) throw error;
    // Shutting down past the grace period: hand the job back without spending an attempt.
    await job.moveToDelayed(Date.now(), token);
    w.log(`${w.id}: handed back tile job ${job.id}`);
    throw new DelayedError();
  }
  const backend = `${selection.name}|${selection.device}`;
  const split = tiles.map(({ tile }) => tile);
  const recorded = await recordDone(
    w.redis,
    jobId,
    `w:${w.id}`,
    backend,
    blocks.map(({ block }) => block),
    split,
    work.runs,
  );
  w.states.note(jobId, recorded.state || null); // read with the record: the next tile job of this job needs no HGET
  if (await cleanUpAfterEnd(ctx, recorded.state))
    throw new JobCancelledError(`job ${jobId} ended while tile job ${job.id} ran; its blobs deleted`);
  // This job stored the last partials of these split q-blocks: merge them here, not in the one reducer (docs/flow.md).
  if (recorded.complete.length > 0 && w.options.mergeSplit !== false) {
    const { state } = await mergeQBlocks(ctx, w.redis, recorded.complete, 0, recorded.firsts);
    // A cancel that landed during the merge deleted the job's blobs and keys before its writes and mark: delete those too.
    if (await cleanUpAfterEnd(ctx, state ?? '')) {
      await w.redis.del(jobKeys.reduced(jobId));
      throw new JobCancelledError(`job ${jobId} ended while tile job ${job.id} merged its q-blocks; their blobs deleted`);
    }
  }
  return { tiles: work.tileCount, computed };
}

/**
 * A tile worker: takes tile jobs and hands each to a kernel thread, which reads only the job's
 * q/k/v blocks (LRU-cached per thread), computes whole q-blocks exactly as the local engine does
 * and writes their output rows itself, and stores a partial per tile of q-blocks split across
 * jobs; the event loop stays free to renew job locks. Records progress. Work a previous attempt
 * finished (a retry, a restart) is not recomputed: whole q-blocks already marked reduced, tiles
 * whose partial exists.
 */
export async function startWorker(options: WorkerServiceOptions): Promise<RunningService> {
  await checkReachable(options.redis);
  const log = options.log ?? (() => {});
  const locations = new BlobLocations(options.blobs);
  const choice = await BackendChoice.start(options.backend ?? 'auto', options.allowSoftware === true);
  refuseSoftware(choice.own, options.allowSoftware === true);
  // A backend whose kernels bind to one thread per process (gpujs: the gl addon) gets one kernel thread.
  const threads = choice.own.backend.threading === 'main' ? 1 : (options.concurrency ?? 1);
  const id = `worker-${hostname()}-${process.pid}`;
  const redis = connectRedis(options.redis);
  // TASKS_PER_THREAD tasks per thread: one computes while the next ones read their blocks (the thread runs them in order).
  const pool = choice.own.backend.cpuFree ? undefined : kernelPool(threadFile, threads);
  const handBack = new AbortController();
  setMaxListeners(0, handBack.signal); // one listener per job in flight
  const parts: WorkerParts = {
    id,
    options,
    threads,
    redis,
    contexts: new JobContexts(redis, options.redis, locations, planLimits(options.limits)),
    locations,
    choice,
    states: new LiveStates(redis),
    pool,
    chunkPool: new Piscina({ filename: chunkThreadFile, minThreads: 0, maxThreads: threads, idleTimeout: 30_000 }),
    handBack,
    started: new Set(),
    reads: { bytes: 0, hits: 0, misses: 0, readMs: 0, stallMs: 0, computeMs: 0, flops: 0 },
    log,
  };

  // The tiles queue also carries inspect jobs' chunk jobs (name `chunk`) and layer jobs' projection jobs (`project`).
  const worker = new Worker<TileJobData | ChunkJobData | ProjectJobData>(
    QUEUES.tiles,
    recordingFailures(
      redis,
      (job: Job<TileJobData | ChunkJobData | ProjectJobData>, token): Promise<object> =>
        job.name === 'chunk'
          ? processChunkJob(parts, job as Job<ChunkJobData>, token)
          : job.name === 'project'
            ? processProjectJob(parts, job as Job<ProjectJobData>, token)
            : processTileJob(parts, job as Job<TileJobData>, token),
    ),
    {
      connection: bullConnection(options.redis),
      prefix: QUEUE_PREFIX,
      name: id,
      // TASKS_PER_THREAD jobs per kernel thread: the next jobs' queue round trips and reads overlap the running
      // one's compute (the wait kernel, on the event loop, keeps two: its control-plane runs measured so).
      concurrency: (pool ? TASKS_PER_THREAD : 2) * threads,
      lockDuration: options.lockDurationMs ?? QUEUE_DEFAULTS.lockDurationMs,
      stalledInterval: options.stalledIntervalMs ?? QUEUE_DEFAULTS.stalledIntervalMs,
      maxStalledCount: QUEUE_DEFAULTS.maxStalledCount,
    },
  );
  worker.on('error', (error) => log(`${id}: ${error.message}`));
  worker.on('failed', (job, error) => log(`${id}: tile job ${String(job?.id ?? '?').slice(0, 80)} failed: ${error.message}`));
  await worker.waitUntilReady();

  const serves =
    choice.flag === 'auto'
      ? `backend ${choice.own.name} on ${choice.own.device} (any job's backend that runs here)`
      : `backend ${choice.own.name} on ${choice.own.device} (its jobs only)`;
  const threadCount = pool
    ? `${threads} thread${threads === 1 ? '' : 's'}`
    : `tiles on its event loop (no CPU), ${2 * threads} jobs at once`;
  const description = `${id}: ${serves}, ${threadCount}, blobs ${locations.list().join(', ')}, queue ${QUEUE_PREFIX}:${QUEUES.tiles}`;
  log(description);
  let logged = 0;
  const readsTimer = setInterval(() => {
    if (parts.reads.flops === logged) return;
    logged = parts.reads.flops;
    log(readsLine(id, parts.reads));
  }, LOG_READS_MS);
  readsTimer.unref();
  let closing: Promise<void> | undefined;
  return {
    id,
    description,
    close() {
      closing ??= (async () => {
        clearInterval(readsTimer);
        const timer = setTimeout(() => handBack.abort(), options.graceMs ?? QUEUE_DEFAULTS.graceMs);
        try {
          await worker.close();
          log(readsLine(id, parts.reads));
        } finally {
          clearTimeout(timer);
          await Promise.all([pool?.destroy(), parts.chunkPool.destroy()]);
          await parts.contexts.close();
          await redis.quit().catch(() => redis.disconnect());
        }
      })();
      return closing;
    },
  };
}
