import { getBackend, parseBackendName, selectBackend } from '@longattn/kernels';
import { InputError } from '@longattn/tensor';
import { FlowProducer, Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BlobStore } from '../blobs/blob-store.ts';
import { openBlobStore } from '../blobs/open.ts';
import { resolveBlocks } from '../blocks.ts';
import { planLimits, plannedWithinLimits, type PlanLimits } from '../limits.ts';
import { openInputs } from '../inputs.ts';
import type { JobRequest, Progress } from '../job.ts';
import { JobOutput } from '../output.ts';
import { batchPlan, type BatchOptions } from './batching.ts';
import { QUEUE_DEFAULTS } from './config.ts';
import { bullConnection, checkReachable, connectRedis } from './connection.ts';
import { buildFlow } from './flow.ts';
import { readRecord, type JobRecord } from './job-record.ts';
import { decodeManifest, encodeManifest, isFinished, type JobManifest, type JobState } from './manifest.ts';
import { blobNames, flowIds, jobKeys, newJobId, QUEUE_PREFIX, QUEUES } from './names.ts';
import { sleep } from './service.ts';
import { downloadOutputs, uploadTensor } from './transfer.ts';

export interface SubmitOptions extends BatchOptions {
  /** Blob store for the job's bytes (see openBlobStore). Default `redis`: the queue's Redis. */
  blobs?: string;
  /** Also create the job's output files (request.out / request.lse) before uploading, so a bad path fails first. */
  createOutput?: boolean;
  /** Planning limits (docs/limits.md); default planLimits() (environment). */
  limits?: Partial<PlanLimits>;
}

/** A queued job as `status` shows it. `running` = queued and at least one tile started. */
export interface QueueJobStatus {
  jobId: string;
  state: JobState | 'running';
  /** One line, for failed jobs. */
  error?: string;
  progress: Progress;
  /** Kernel runs so far: equals totalTiles when no tile was ever computed twice. */
  computedTiles: number;
  manifest: JobManifest;
  submittedAt?: number;
  startedAt?: number;
  finishedAt?: number;
  /** Backends and devices the workers that computed tiles reported. */
  backends: string[];
  devices: string[];
  workers: number;
}

/** How often wait() reads progress between events. */
const PROGRESS_POLL_MS = 250;

function numberField(record: JobRecord, field: string): number | undefined {
  return record[field] === undefined ? undefined : Number(record[field]);
}

/**
 * The client side of the queue engine: submits jobs (inputs uploaded to the blob store, one
 * BullMQ flow), follows them, downloads results, cancels and cleans up. Workers and reducers
 * (startWorker / startReducer) do the work, on any number of machines.
 */
export class QueueEngine {
  private readonly stores = new Map<string, BlobStore>();
  private flows: FlowProducer | undefined;
  private rootQueue: Queue | undefined;

  private constructor(
    readonly url: string,
    private readonly redis: Redis,
  ) {}

  /** Connects, failing fast with InputError(`--redis`) when Redis cannot be reached. */
  static async connect(url: string): Promise<QueueEngine> {
    await checkReachable(url);
    return new QueueEngine(url, connectRedis(url));
  }

  private store(location: string): BlobStore {
    let store = this.stores.get(location);
    if (!store) {
      store = openBlobStore(location, this.url);
      this.stores.set(location, store);
    }
    return store;
  }

  private get root(): Queue {
    this.rootQueue ??= new Queue(QUEUES.jobs, { connection: bullConnection(this.url), prefix: QUEUE_PREFIX });
    return this.rootQueue;
  }

  /**
   * Validates the request's inputs, plans it with the same plan() as the local engine (default
   * tiles: QUEUE_DEFAULTS.blockScale × the backend's), uploads Q/K/V (streamed, bhsd float32), then adds the flow. On any failure
   * nothing of the job is left in Redis or the blob store.
   */
  async submit(request: JobRequest, options: SubmitOptions = {}): Promise<{ manifest: JobManifest; output?: JobOutput }> {
    const inputs = openInputs(request);
    let output: JobOutput | undefined;
    const id = newJobId();
    const location = options.blobs ?? 'redis';
    let store: BlobStore | undefined;
    try {
      const { spec } = inputs;
      const backend = request.backend ?? 'auto';
      const defaults = await defaultBlocks(backend);
      const blocks = resolveBlocks(request, defaults);
      const thePlan = plannedWithinLimits(spec, blocks, planLimits(options.limits), 'queue');
      const groups = batchPlan(thePlan, options);
      store = this.store(location);
      const manifest: JobManifest = {
        version: 1,
        id,
        spec,
        qShape: [...inputs.q.shape],
        blockQ: blocks.blockQ,
        blockK: blocks.blockK,
        backend,
        blobs: store.location,
        tileCount: thePlan.tileCount,
        skippedTiles: thePlan.skippedTiles,
        qBlockCount: thePlan.qBlockCount,
        flops: thePlan.flops,
        tileJobs: groups.reduce((n, g) => n + g.tileJobs.length, 0),
        reduceJobs: groups.length,
      };
      if (options.createOutput) output = new JobOutput(spec, inputs.q.shape, request.out, request.lse, request.outDtype);
      const hash = jobKeys.hash(id);
      await this.redis.hset(hash, 'manifest', encodeManifest(manifest), 'state', 'uploading', 'submittedAt', String(Date.now()));
      await uploadTensor(store, blobNames.input(id, 'q'), inputs.q, spec, spec.H, spec.Sq);
      await uploadTensor(store, blobNames.input(id, 'k'), inputs.k, spec, spec.Hk, spec.Sk);
      await uploadTensor(store, blobNames.input(id, 'v'), inputs.v, spec, spec.Hk, spec.Sk);
      await this.redis.hset(hash, 'state', 'queued');
      this.flows ??= new FlowProducer({ connection: bullConnection(this.url), prefix: QUEUE_PREFIX });
      await this.flows.add(buildFlow(id, groups));
      return { manifest, ...(output ? { output } : {}) };
    } catch (error) {
      output?.abort();
      await this.discard(id, store).catch(() => {});
      await this.redis.del(jobKeys.hash(id)).catch(() => {});
      throw error;
    } finally {
      inputs.close();
    }
  }

  /** The job's state and progress; InputError(`JOB`) for an unknown id. */
  async status(jobId: string): Promise<QueueJobStatus> {
    const record = await readRecord(this.redis, jobId);
    if (!record?.manifest)
      throw new InputError(
        'JOB',
        `no job ${JSON.stringify(jobId)} in this Redis (finished jobs are kept ${QUEUE_DEFAULTS.keepFinishedSeconds / 86400} days)`,
      );
    const manifest = decodeManifest(record.manifest);
    let state = (record.state ?? 'queued') as QueueJobStatus['state'];
    let error = record.error;
    if (state === 'queued') {
      const root = await Job.fromId(this.root, flowIds.root(jobId));
      if (root && (await root.getState()) === 'failed') {
        state = 'failed';
        error ??= root.failedReason;
      } else if (record.startedAt) {
        state = 'running';
      }
    }
    const workers = Object.entries(record).filter(([field]) => field.startsWith('w:'));
    const unique = (values: string[]) => [...new Set(values)].sort();
    return {
      jobId,
      state,
      ...(error ? { error } : {}),
      progress: {
        doneTiles: Math.min(numberField(record, 'tiles') ?? 0, manifest.tileCount),
        totalTiles: manifest.tileCount,
        doneFlops: Math.min(numberField(record, 'flops') ?? 0, manifest.flops),
        totalFlops: manifest.flops,
      },
      computedTiles: numberField(record, 'computed') ?? 0,
      manifest,
      ...(record.submittedAt ? { submittedAt: Number(record.submittedAt) } : {}),
      ...(record.startedAt ? { startedAt: Number(record.startedAt) } : {}),
      ...(record.finishedAt ? { finishedAt: Number(record.finishedAt) } : {}),
      backends: unique(workers.map(([, v]) => v.split('|')[0]!)),
      devices: unique(workers.map(([, v]) => v.split('|').slice(1).join('|'))),
      workers: workers.length,
    };
  }

  /**
   * Waits until the job is done, reporting progress: tile counts are polled every
   * PROGRESS_POLL_MS, and QueueEvents (reduce jobs done, the root done or failed) wake it at
   * once. Throws when the job failed or was cancelled. Aborting the signal cancels the job.
   */
  async wait(jobId: string, options: { onProgress?: (p: Progress) => void; signal?: AbortSignal } = {}): Promise<QueueJobStatus> {
    let wake: (() => void) | undefined;
    const kick = () => wake?.();
    const connection = bullConnection(this.url);
    // Reduce completions (a few per job, not one per tile) and the root's end wake the loop.
    const reduceEvents = new QueueEvents(QUEUES.reduce, { connection, prefix: QUEUE_PREFIX });
    const rootEvents = new QueueEvents(QUEUES.jobs, { connection, prefix: QUEUE_PREFIX });
    reduceEvents.on('completed', ({ jobId: child }) => {
      if (child.startsWith(`${jobId}-`)) kick();
    });
    rootEvents.on('completed', ({ jobId: root }) => {
      if (root === jobId) kick();
    });
    rootEvents.on('failed', ({ jobId: root }) => {
      if (root === jobId) kick();
    });
    const onAbort = () => kick();
    options.signal?.addEventListener('abort', onAbort);
    try {
      await Promise.all([reduceEvents.waitUntilReady(), rootEvents.waitUntilReady()]);
      let last = '';
      for (;;) {
        if (options.signal?.aborted) {
          await this.cancel(jobId);
          throw new Error(`job ${jobId} cancelled`);
        }
        const status = await this.status(jobId);
        const seen = `${status.progress.doneTiles}/${status.progress.doneFlops}`;
        if (seen !== last) {
          options.onProgress?.({ ...status.progress });
          last = seen;
        }
        if (status.state === 'done') return status;
        if (status.state === 'failed') throw new Error(`job ${jobId} failed: ${status.error ?? 'unknown error'}`);
        if (status.state === 'cancelled') throw new Error(`job ${jobId} was cancelled`);
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(PROGRESS_POLL_MS)]);
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      await Promise.all([reduceEvents.close(), rootEvents.close()]);
    }
  }

  /** Writes a done job's O and LSE through `output` (atomic files), then commits it. */
  async download(jobId: string, output: JobOutput): Promise<void> {
    const status = await this.status(jobId);
    if (status.state !== 'done')
      throw new Error(`job ${jobId} is ${status.state}${status.error ? `: ${status.error}` : ''}; its result is not available`);
    const store = this.store(status.manifest.blobs);
    if (!(await store.header(blobNames.out(jobId)))) throw new Error(`job ${jobId}: its result was already collected or removed`);
    try {
      await downloadOutputs(store, { out: blobNames.out(jobId), lse: blobNames.lse(jobId) }, status.manifest.spec, output);
      output.commit();
    } catch (error) {
      output.abort();
      throw error;
    }
  }

  /**
   * Cancels a job: marks it cancelled (workers stop taking its tiles), removes its flow (waiting
   * for in-flight jobs to let go) and deletes its blobs. On a finished job it discards the result.
   * Returns the state it had.
   */
  async cancel(jobId: string): Promise<QueueJobStatus['state']> {
    const status = await this.status(jobId);
    if (!isFinished(status.state as JobState)) {
      await this.redis.hset(jobKeys.hash(jobId), 'state', 'cancelled', 'finishedAt', String(Date.now()));
    }
    await this.discard(jobId, this.store(status.manifest.blobs));
    await this.redis.expire(jobKeys.hash(jobId), QUEUE_DEFAULTS.keepFinishedSeconds);
    return status.state;
  }

  /** Removes everything of a job: flow, blobs, record (after its result was collected). */
  async remove(jobId: string): Promise<void> {
    const status = await this.status(jobId);
    await this.discard(jobId, this.store(status.manifest.blobs));
    await this.redis.del(jobKeys.hash(jobId));
  }

  /** Removes a job's flow and blobs, keeping its record. A locked (in-flight) job is retried until released. */
  private async discard(jobId: string, store: BlobStore | undefined): Promise<void> {
    for (let tries = 0; ; tries++) {
      const state = await this.root.getJobState(flowIds.root(jobId));
      if (state === 'unknown') break;
      if ((await this.root.remove(flowIds.root(jobId), { removeChildren: true })) === 1) break;
      if (tries >= 200) throw new Error(`job ${jobId}: its flow is still locked by a worker after 30 s`);
      await sleep(150);
    }
    await store?.deletePrefix(`${jobId}/`);
    await this.redis.del(jobKeys.reduced(jobId), jobKeys.records(jobId));
  }

  async close(): Promise<void> {
    await Promise.all([this.flows?.close(), this.rootQueue?.close(), ...[...this.stores.values()].map((s) => s.close())]);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** The queue's default tiles for a backend name: its defaults scaled by QUEUE_DEFAULTS.blockScale. */
async function defaultBlocks(backend: string): Promise<{ blockQ: number; blockK: number }> {
  let blocks: { blockQ: number; blockK: number };
  if (backend === 'auto') {
    blocks = (await selectBackend('auto', { threads: 1 })).backend.defaultBlocks;
  } else {
    try {
      blocks = getBackend(parseBackendName(backend).name).defaultBlocks;
    } catch (error) {
      throw new InputError('--backend', (error as Error).message);
    }
  }
  const { rows, keys } = QUEUE_DEFAULTS.blockScale;
  return { blockQ: blocks.blockQ * rows, blockK: blocks.blockK * keys };
}
