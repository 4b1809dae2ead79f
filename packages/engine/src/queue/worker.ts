import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import type { Tile } from '@longattn/attention';
import { refuseSoftware, selectBackend, type Selection } from '@longattn/kernels';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Piscina } from 'piscina';
import { QUEUE_DEFAULTS } from './config.ts';
import { bullConnection, checkReachable, connectRedis } from './connection.ts';
import type { TileJobData } from './flow.ts';
import { JobContexts } from './job-context.ts';
import { blobNames, jobKeys, QUEUE_PREFIX, QUEUES } from './names.ts';
import { recordingFailures, type RunningService } from './service.ts';
import { isWholeRun } from './batching.ts';
import { recordDone } from './progress.ts';
import type { TileTask } from './tile-thread.ts';

export interface WorkerServiceOptions {
  redis: string;
  /** Kernel threads, i.e. tiles computed at once. Default 1. */
  concurrency?: number;
  /** Backend for jobs submitted with `auto`. Default auto (a GPU backend on real GPU hardware, else the fastest CPU one). */
  backend?: string;
  /** Input-block LRU cache size, split between the kernel threads. */
  cacheBytes?: number;
  /** Sleep before each tile, in the kernel thread (fault tests and demos). */
  throttleMs?: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** SIGTERM: how long in-flight tiles may finish before they are handed back. */
  graceMs?: number;
  /** Let an accelerated backend run on a software renderer or the CPU (else startWorker refuses: InputError). */
  allowSoftware?: boolean;
  log?: (line: string) => void;
}

const STATE_TTL_MS = 500;
const threadFile = new URL('./tile-thread.mjs', import.meta.url).href;

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
  const own = await selectBackend(options.backend ?? 'auto', { threads: 1 });
  refuseSoftware(own, options.allowSoftware === true);
  // A backend whose kernels bind to one thread per process (gpujs: the gl addon) gets one kernel thread.
  const threads = own.backend.threading === 'main' ? 1 : (options.concurrency ?? 1);
  const id = `worker-${hostname()}-${process.pid}`;
  const redis = connectRedis(options.redis);
  const contexts = new JobContexts(redis, options.redis);
  // Two tasks per thread: one computes while the next reads its blocks (the thread runs them in order).
  const pool = new Piscina({
    filename: threadFile,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Infinity,
    concurrentTasksPerWorker: 2,
  });
  const handBack = new AbortController();
  setMaxListeners(0, handBack.signal); // one listener per job in flight
  const selections = new Map<string, Promise<Selection>>([['auto', Promise.resolve(own)]]);
  const selectionFor = (backend: string) => {
    let selection = selections.get(backend);
    if (!selection) {
      selection = selectBackend(backend, { threads: 1 });
      selections.set(backend, selection);
    }
    return selection;
  };

  // A job's state, re-read at most every STATE_TTL_MS: a cancel reaches workers within that.
  const states = new Map<string, { state: string | null; at: number }>();
  const liveState = async (jobId: string) => {
    const known = states.get(jobId);
    if (known && Date.now() - known.at < STATE_TTL_MS) return known.state;
    const state = await redis.hget(jobKeys.hash(jobId), 'state');
    states.delete(jobId);
    states.set(jobId, { state, at: Date.now() });
    if (states.size > 64) states.delete(states.keys().next().value!);
    return state;
  };
  const started = new Set<string>();

  let bytesRead = 0;

  const processTiles = async (job: Job<TileJobData>, token: string | undefined): Promise<{ tiles: number; computed: number }> => {
    const { job: jobId, tiles: runs } = job.data;
    const ctx = await contexts.get(jobId);
    const { plan } = ctx;
    const state = await liveState(jobId);
    if (state !== 'queued') throw new UnrecoverableError(`job ${jobId} is ${state ?? 'gone'}`);
    const whole: number[] = [];
    const split: { qi: number; tile: Tile }[] = [];
    for (const run of runs) {
      const [qi, from, to] = run;
      const block = plan.qBlocks[qi];
      if (!block || from < 0 || from >= to || to > block.tiles.length)
        throw new UnrecoverableError(`job ${jobId}: tile run [${qi}, ${from}, ${to}) is not in its plan`);
      if (isWholeRun(plan, run)) whole.push(qi);
      else for (let t = from; t < to; t++) split.push({ qi, tile: block.tiles[t]! });
    }
    const tileCount = runs.reduce((n, [, from, to]) => n + to - from, 0);
    // Skip what a previous attempt finished: whole q-blocks marked reduced, partials stored.
    const [reduced, stored] = await Promise.all([
      whole.length > 0 ? redis.smismember(jobKeys.reduced(jobId), ...whole.map(String)) : [],
      ctx.store.existsMany(split.map(({ qi, tile }) => blobNames.partial(jobId, qi, tile.kBlock))),
    ]);
    const blocks = whole.filter((_, i) => reduced[i] !== 1).map((qi) => ({ qi, block: plan.qBlocks[qi]! }));
    const tiles = split.filter((_, i) => !stored[i]);
    const computed = blocks.reduce((n, { block }) => n + block.tiles.length, 0) + tiles.length;
    if (computed === 0) return { tiles: tileCount, computed: 0 };
    if (!started.has(jobId)) {
      await redis.hsetnx(jobKeys.hash(jobId), 'startedAt', String(Date.now()));
      started.add(jobId);
    }
    const selection = await selectionFor(ctx.manifest.backend);
    const task: TileTask = {
      backend: selection.name,
      kernelOptions: selection.options,
      job: jobId,
      spec: ctx.manifest.spec,
      blockK: ctx.manifest.blockK,
      store: ctx.manifest.blobs,
      redis: options.redis,
      cacheBytes: Math.floor((options.cacheBytes ?? QUEUE_DEFAULTS.cacheBytes) / threads),
      blocks: blocks.map(({ block }) => block),
      tiles,
      throttleMs: options.throttleMs ?? 0,
    };
    try {
      const reply = (await pool.run(task, { signal: handBack.signal })) as { missBytes: number };
      bytesRead += reply.missBytes;
    } catch (error) {
      if (!handBack.signal.aborted) throw error;
      // Shutting down past the grace period: hand the job back without spending an attempt.
      await job.moveToDelayed(Date.now(), token);
      log(`${id}: handed back tile job ${job.id}`);
      throw new DelayedError();
    }
    await recordDone(
      redis,
      jobId,
      `w:${id}`,
      `${selection.name}|${selection.device}`,
      blocks,
      tiles.map(({ tile }) => tile),
    );
    return { tiles: tileCount, computed };
  };

  const worker = new Worker<TileJobData>(QUEUES.tiles, recordingFailures(redis, processTiles), {
    connection: bullConnection(options.redis),
    prefix: QUEUE_PREFIX,
    name: id,
    // Two jobs per thread: the next job's queue round trips and reads overlap the running one's compute.
    concurrency: 2 * threads,
    lockDuration: options.lockDurationMs ?? QUEUE_DEFAULTS.lockDurationMs,
    stalledInterval: options.stalledIntervalMs ?? QUEUE_DEFAULTS.stalledIntervalMs,
    maxStalledCount: QUEUE_DEFAULTS.maxStalledCount,
  });
  worker.on('error', (error) => log(`${id}: ${error.message}`));
  worker.on('failed', (job, error) => log(`${id}: tile job ${job?.id ?? '?'} failed: ${error.message}`));
  await worker.waitUntilReady();

  const description = `${id}: backend ${own.name} on ${own.device}, ${threads} thread${threads === 1 ? '' : 's'}, queue ${QUEUE_PREFIX}:${QUEUES.tiles}`;
  log(description);
  let closing: Promise<void> | undefined;
  return {
    id,
    description,
    close() {
      closing ??= (async () => {
        const timer = setTimeout(() => handBack.abort(), options.graceMs ?? QUEUE_DEFAULTS.graceMs);
        try {
          await worker.close();
          log(`${id}: ${(bytesRead / 2 ** 20).toFixed(1)} MiB of input blocks read`);
        } finally {
          clearTimeout(timer);
          await pool.destroy();
          await contexts.close();
          await redis.quit().catch(() => redis.disconnect());
        }
      })();
      return closing;
    },
  };
}
