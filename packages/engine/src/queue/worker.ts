import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { maskRule, visiblePairs, type Tile } from '@longattn/attention';
import { selectBackend, type Selection } from '@longattn/kernels';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Piscina } from 'piscina';
import { QUEUE_DEFAULTS } from './config.ts';
import { bullConnection, checkReachable, connectRedis } from './connection.ts';
import type { TileJobData } from './flow.ts';
import { JobContexts, type JobContext } from './job-context.ts';
import { blobNames, jobKeys, QUEUE_PREFIX, QUEUES } from './names.ts';
import { recordingFailures, type RunningService } from './service.ts';
import type { TaskTile, TileTask } from './tile-thread.ts';

export interface WorkerServiceOptions {
  redis: string;
  /** Kernel threads, i.e. tiles computed at once. Default 1. */
  concurrency?: number;
  /** Backend for jobs submitted with `auto`. Default auto (a GPU backend on real GPU hardware, else the fastest CPU one). */
  backend?: string;
  /** Input-block LRU cache size, split between the kernel threads. */
  cacheBytes?: number;
  /** Sleep before each tile (fault tests and demos). */
  throttleMs?: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** SIGTERM: how long in-flight tiles may finish before they are handed back. */
  graceMs?: number;
  log?: (line: string) => void;
}

const STATE_TTL_MS = 500;
const threadFile = new URL('./tile-thread.mjs', import.meta.url).href;

/**
 * A tile worker: takes tile jobs and hands each to a kernel thread, which reads only the job's
 * q/k/v blocks (LRU-cached per thread), runs the kernel and stores each tile's partial as its own
 * blob; the event loop stays free to renew job locks. Counts progress. Tiles whose partial already
 * exists (a retry, a restart) are not recomputed.
 */
export async function startWorker(options: WorkerServiceOptions): Promise<RunningService> {
  await checkReachable(options.redis);
  const threads = options.concurrency ?? 1;
  const log = options.log ?? (() => {});
  const own = await selectBackend(options.backend ?? 'auto', { threads: 1 });
  const id = `worker-${hostname()}-${process.pid}`;
  const redis = connectRedis(options.redis);
  const contexts = new JobContexts(redis, options.redis);
  const pool = new Piscina({ filename: threadFile, minThreads: threads, maxThreads: threads, idleTimeout: Infinity });
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

  /** A tile as its kernel thread needs it: the byte ranges of its blocks and its partial's blob name. */
  const taskTile = (ctx: JobContext, tile: Tile, partial: string): TaskTile => {
    const { spec, id: job } = ctx.manifest;
    const row = spec.D * 4;
    const kvAt = ((tile.b * spec.Hk + tile.kvh) * spec.Sk + tile.kStart) * row;
    return {
      rows: tile.rows,
      keys: tile.keys,
      qStart: tile.qStart,
      kStart: tile.kStart,
      full: tile.full,
      q: { name: blobNames.input(job, 'q'), offset: ((tile.b * spec.H + tile.h) * spec.Sq + tile.qStart) * row, length: tile.rows * row },
      k: { name: blobNames.input(job, 'k'), offset: kvAt, length: tile.keys * row },
      v: { name: blobNames.input(job, 'v'), offset: kvAt, length: tile.keys * row },
      partial,
    };
  };
  let bytesRead = 0;

  const processTiles = async (job: Job<TileJobData>, token: string | undefined): Promise<{ tiles: number; computed: number }> => {
    const { job: jobId, tiles: runs } = job.data;
    const ctx = await contexts.get(jobId);
    const hash = jobKeys.hash(jobId);
    const state = await liveState(jobId);
    if (state !== 'queued') throw new UnrecoverableError(`job ${jobId} is ${state ?? 'gone'}`);
    const tiles: { qi: number; tile: Tile }[] = [];
    for (const [qi, from, to] of runs) {
      const block = ctx.plan.qBlocks[qi];
      if (!block || to > block.tiles.length) throw new UnrecoverableError(`job ${jobId}: tile run [${qi}, ${from}, ${to}) is not in its plan`);
      for (let t = from; t < to; t++) tiles.push({ qi, tile: block.tiles[t]! });
    }
    const names = tiles.map(({ qi, tile }) => blobNames.partial(jobId, qi, tile.kBlock));
    const stored = await ctx.store.existsMany(names);
    const todo = tiles.map((t, i) => ({ ...t, name: names[i]! })).filter((_, i) => !stored[i]);
    if (todo.length === 0) return { tiles: tiles.length, computed: 0 };
    if (!started.has(jobId)) {
      await redis.hsetnx(hash, 'startedAt', String(Date.now()));
      started.add(jobId);
    }
    const selection = await selectionFor(ctx.manifest.backend);
    const { spec } = ctx.manifest;
    const task: TileTask = {
      backend: selection.name,
      kernelOptions: selection.options,
      D: spec.D,
      scale: spec.scale,
      rule: maskRule(spec),
      store: ctx.manifest.blobs,
      redis: options.redis,
      cacheBytes: Math.floor((options.cacheBytes ?? QUEUE_DEFAULTS.cacheBytes) / threads),
      tiles: todo.map(({ tile, name }) => taskTile(ctx, tile, name)),
    };
    try {
      if (options.throttleMs) await delay(options.throttleMs * todo.length, undefined, { signal: handBack.signal });
      const reply = (await pool.run(task, { signal: handBack.signal })) as { missBytes: number };
      bytesRead += reply.missBytes;
    } catch (error) {
      if (!handBack.signal.aborted) throw error;
      // Shutting down past the grace period: hand the job back without spending an attempt.
      await job.moveToDelayed(Date.now(), token);
      log(`${id}: handed back tile job ${job.id}`);
      throw new DelayedError();
    }
    const rule = maskRule(ctx.manifest.spec);
    const flops = todo.reduce((sum, { tile }) => sum + 4 * ctx.manifest.spec.D * visiblePairs(rule, tile.qStart, tile.rows, tile.kStart, tile.keys), 0);
    await redis
      .multi()
      .hincrby(hash, 'tiles', todo.length)
      .hincrby(hash, 'computed', todo.length)
      .hincrby(hash, 'flops', flops)
      .hset(hash, `w:${id}`, `${selection.name}|${selection.device}`)
      .exec();
    return { tiles: tiles.length, computed: todo.length };
  };

  const worker = new Worker<TileJobData>(QUEUES.tiles, recordingFailures(redis, processTiles), {
    connection: bullConnection(options.redis),
    prefix: QUEUE_PREFIX,
    name: id,
    // One job more than threads: its queue round trips overlap the running job's compute.
    concurrency: threads + 1,
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
