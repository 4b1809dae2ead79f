import type { Redis } from 'ioredis';
import { InputError } from '@longattn/tensor';
import type { QueueEngine, QueueJobStatus } from '../queue/queue-engine.ts';
import { isJobId, jobKeys } from '../queue/names.ts';
import { API_DEFAULTS } from './config.ts';
import { apiKeys } from './names.ts';
import type { JobOptions } from './options.ts';

/** Job states of the HTTP API (docs/contracts.md): the engine's `uploading` shows as queued. */
export type ApiState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** A job as GET /v1/jobs/:id shows it. Times are ms since the epoch; gflops over startedAt → finishedAt (or now). */
export interface JobView {
  id: string;
  kind: string;
  state: ApiState;
  progress: { done: number; total: number };
  flops: { done: number; total: number };
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  error?: string;
  shape?: { B: number; H: number; Hk: number; Sq: number; Sk: number; D: number };
  /** q-blocks of the plan (the dashboard's grid) and their rows. */
  qBlocks?: number;
  blockQ?: number;
  blockK?: number;
  gflops?: number;
  /** `linear` for --linear jobs (an approximation, not softmax); absent for exact attention. */
  approximation?: 'linear';
  workers: number;
  backends: string[];
  options: Record<string, unknown>;
}

/** The API's record of a job (apiKeys.job): who owns it and what was asked. */
type ApiRecord = Record<string, string>;

/**
 * GET /v1/jobs/:id answers from a view at most this old: dashboards and scripts poll a running
 * job many times a second, and each fresh view is ~4 Redis round trips (measured here: 2 ms of
 * api CPU per request, mostly socket writes, on a loaded 2-core machine).
 */
const VIEW_TTL_MS = 100;
/** Views kept at most (a Map in insertion order: the oldest go first). */
const VIEW_CACHE_SIZE = 1000;

/**
 * `cache`'s entry for `id` when it is younger than VIEW_TTL_MS, else `read()`'s promise, kept
 * (concurrent callers share one read; a failed read is dropped). At most VIEW_CACHE_SIZE entries,
 * the least recently read going first.
 */
function recent<T>(cache: Map<string, { at: number; value: Promise<T> }>, id: string, read: () => Promise<T>): Promise<T> {
  const hit = cache.get(id);
  if (hit && Date.now() - hit.at < VIEW_TTL_MS) return hit.value;
  const value = read();
  cache.delete(id);
  cache.set(id, { at: Date.now(), value });
  if (cache.size > VIEW_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  value.catch(() => cache.delete(id));
  return value;
}

/**
 * Job records of the API in Redis, beside the queue's, so any api process (restarted or one of
 * several) serves any job. Ownership is checked on every read: another tenant's job is "not found".
 */
export class ApiJobs {
  /** Called once per job when a finished state is first recorded (metrics). */
  onFinished: (view: { state: ApiState; gflops?: number }) => void = () => {};

  private readonly views = new Map<string, { at: number; value: Promise<JobView> }>();
  /** API records read in the last VIEW_TTL_MS (a record's tenant never changes; its state is as fresh as a cached view). */
  private readonly records = new Map<string, { at: number; value: Promise<ApiRecord> }>();

  constructor(
    private readonly redis: Redis,
    readonly engine: QueueEngine,
  ) {}

  /** view(), shared by the requests of the last VIEW_TTL_MS (concurrent ones share one read). */
  cachedView(id: string, record: ApiRecord): Promise<JobView> {
    return recent(this.views, id, () => this.view(id, record));
  }

  async create(tenant: string, id: string, options: JobOptions, createdAt: number): Promise<void> {
    await this.redis
      .multi()
      .hset(apiKeys.job(id), 'tenant', tenant, 'kind', options.kind, 'options', JSON.stringify(options), 'createdAt', String(createdAt))
      .zadd(apiKeys.tenant(tenant), createdAt, id)
      .zadd(apiKeys.all, createdAt, id)
      .exec();
  }

  /** The job's record when `tenant` owns it; undefined otherwise (bad id, unknown, another tenant's). */
  async owned(tenant: string, id: string): Promise<ApiRecord | undefined> {
    if (!isJobId(id)) return undefined;
    const record = await recent(this.records, id, () => this.redis.hgetall(apiKeys.job(id)));
    if (!record.tenant) this.records.delete(id); // not created yet (or expired): asked again next time
    return record.tenant === tenant ? record : undefined;
  }

  /** The job's current view: the engine's status merged with the API record. */
  async view(id: string, record: ApiRecord): Promise<JobView> {
    let status: QueueJobStatus | undefined;
    try {
      status = await this.engine.status(id);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
    }
    const base = {
      id,
      kind: record.kind ?? 'attention',
      createdAt: Number(record.createdAt),
      options: JSON.parse(record.options ?? '{}') as Record<string, unknown>,
    };
    if (!status) {
      // The queue's record is gone (expired, or the result was collected by `longattn result`).
      const state = (record.state as ApiState | undefined) ?? 'failed';
      return {
        ...base,
        state,
        progress: { done: 0, total: 0 },
        flops: { done: 0, total: 0 },
        ...(record.finishedAt ? { finishedAt: Number(record.finishedAt) } : {}),
        ...(state === 'failed' ? { error: record.error ?? 'the job’s data was removed from the queue' } : {}),
        workers: 0,
        backends: [],
      };
    }
    // A cancelled finished job keeps the queue's state `done`; its result is gone.
    const state: ApiState = record.state === 'cancelled' ? 'cancelled' : status.state === 'uploading' ? 'queued' : status.state;
    const { spec } = status.manifest;
    const end = status.finishedAt ?? Date.now();
    const seconds = status.startedAt ? (end - status.startedAt) / 1000 : 0;
    if (state === 'done' || state === 'failed' || state === 'cancelled') await this.remember(id, record, state, status);
    return {
      ...base,
      state,
      progress: { done: status.progress.doneTiles, total: status.progress.totalTiles },
      flops: { done: status.progress.doneFlops, total: status.progress.totalFlops },
      ...(status.startedAt ? { startedAt: status.startedAt } : {}),
      ...(status.finishedAt ? { finishedAt: status.finishedAt } : {}),
      ...(status.error ? { error: status.error } : {}),
      shape: { B: spec.B, H: spec.H, Hk: spec.Hk, Sq: spec.Sq, Sk: spec.Sk, D: spec.D },
      qBlocks: status.manifest.qBlockCount,
      blockQ: status.manifest.blockQ,
      blockK: status.manifest.blockK,
      ...(seconds > 0 ? { gflops: status.progress.doneFlops / 1e9 / seconds } : {}),
      ...(spec.linear ? { approximation: 'linear' as const } : {}),
      workers: status.workers,
      backends: status.backends,
    };
  }

  /** Keeps a finished job's state in the API record, for when the queue's record expires first. */
  private async remember(id: string, record: ApiRecord, state: ApiState, status: QueueJobStatus): Promise<void> {
    if (record.state === state) return;
    record.state = state;
    const seconds = status.startedAt && status.finishedAt ? (status.finishedAt - status.startedAt) / 1000 : 0;
    this.onFinished({ state, ...(seconds > 0 ? { gflops: status.progress.doneFlops / 1e9 / seconds } : {}) });
    await this.redis
      .multi()
      .hset(
        apiKeys.job(id),
        'state',
        state,
        'finishedAt',
        String(status.finishedAt ?? Date.now()),
        ...(status.error ? ['error', status.error] : []),
      )
      .expire(apiKeys.job(id), API_DEFAULTS.keepSeconds)
      .exec();
  }

  /** Indices of the q-blocks whose output rows are written (the queue's reduced set). */
  async reduced(id: string): Promise<number[]> {
    return (await this.redis.smembers(jobKeys.reduced(id))).map(Number).sort((a, b) => a - b);
  }

  /** A tenant's job ids, newest first, and the total. */
  async list(tenant: string, offset: number, limit: number): Promise<{ ids: string[]; total: number }> {
    const [ids, total] = await Promise.all([
      this.redis.zrevrange(apiKeys.tenant(tenant), offset, offset + limit - 1),
      this.redis.zcard(apiKeys.tenant(tenant)),
    ]);
    return { ids, total };
  }

  async record(id: string): Promise<ApiRecord> {
    return this.redis.hgetall(apiKeys.job(id));
  }

  /** Marks a job cancelled in the API record (the engine's cancel does the work). */
  async markCancelled(id: string): Promise<void> {
    this.views.delete(id);
    this.records.delete(id);
    await this.redis
      .multi()
      .hset(apiKeys.job(id), 'state', 'cancelled', 'finishedAt', String(Date.now()))
      .expire(apiKeys.job(id), API_DEFAULTS.keepSeconds)
      .exec();
  }

  /** States of the most recent jobs (all tenants), for /metrics. */
  async recentStates(): Promise<Map<ApiState, number>> {
    const ids = await this.redis.zrevrange(apiKeys.all, 0, API_DEFAULTS.metricsJobs - 1);
    const counts = new Map<ApiState, number>();
    if (ids.length === 0) return counts;
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hmget(jobKeys.hash(id), 'state', 'startedAt').hget(apiKeys.job(id), 'state');
    const replies = (await pipe.exec()) ?? [];
    for (let i = 0; i < ids.length; i++) {
      const [queueState, startedAt] = (replies[2 * i]?.[1] ?? []) as (string | null)[];
      const apiState = replies[2 * i + 1]?.[1] as string | null;
      let state = (queueState ?? apiState ?? 'failed') as ApiState | 'uploading';
      if (state === 'uploading') state = 'queued';
      if (state === 'queued' && startedAt) state = 'running';
      counts.set(state, (counts.get(state) ?? 0) + 1);
    }
    return counts;
  }
}
