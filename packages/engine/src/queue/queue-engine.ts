import { getBackend, parseBackendName, selectBackend } from '@longattn/kernels';
import { validateSpec, type AttentionSpec } from '@longattn/attention';
import { InputError, openTensors, type TensorReader } from '@longattn/tensor';
import { FlowProducer, Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BlobStore } from '../blobs/blob-store.ts';
import { BlobLocations } from '../blobs/locations.ts';
import { openBlobStore } from '../blobs/open.ts';
import { LINEAR_BLOCKS, strideBlocks } from '@longattn/attention';
import { resolveBlocks } from '../blocks.ts';
import { linearBackend } from '../linear-block.ts';
import { planLimits, plannedWithinLimits, type PlanLimits } from '../limits.ts';
import { openInputs } from '../inputs.ts';
import type { JobRequest, Progress } from '../job.ts';
import { JobCancelledError, JobFailedError, JobGoneError } from '../errors.ts';
import { JobOutput } from '../output.ts';
import { batchPlan, type BatchOptions } from './batching.ts';
import { QUEUE_DEFAULTS } from './config.ts';
import { bullConnection, checkReachable, closeWithin, connectRedis, isRedisFault, redisFault } from './connection.ts';
import { buildFlow } from './flow.ts';
import type { ReduceGroup } from './batching.ts';
import { readRecordAndFailed, recordUploading, type JobRecord } from './job-record.ts';
import { decodeManifest, encodeManifest, isFinished, type JobManifest, type JobState, planManifest } from './manifest.ts';
import { blobNames, checkJobId, flowIds, jobKeys, newJobId, QUEUE_PREFIX, QUEUES } from './names.ts';
import { sleep } from './service.ts';
import { downloadOutputs, sealInput, uploadTensor } from './transfer.ts';
import type { InspectRequest } from '../inspect/request.ts';
import type { InspectOutput } from './blob-layout.ts';
import { submitInspectJob, type InspectSubmitOptions, type SubmitParts } from './inspect-submit.ts';
import type { LayerRequest } from '../layer/request.ts';
import { submitLayerJob, type LayerSubmitOptions } from './layer-submit.ts';

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
  /** Inspect jobs: when the statistics pass began (the LSE pass ended, or the job's --lse was stored). */
  inspectStartedAt?: number;
  /** Layer jobs: when the attention stage began (every K/V and Q block projected) and when the o_proj stage began. */
  attentionAt?: number;
  outAt?: number;
  /** Inspect jobs, once done: the score tiles the chunks ran on (`ort`, `js`, or both joined by `+`). */
  scores?: string;
  finishedAt?: number;
  /** Backends and devices the workers that computed tiles reported (one backend: the job's). */
  backends: string[];
  devices: string[];
  workers: number;
  /**
   * While nothing was computed and workers handed the job back: why, e.g. `needs backend ort;
   * declined by 1 worker (worker-a-12: serves wasm only)`.
   */
  waiting?: string;
}

/** A job whose inputs are being uploaded straight into its blob store (openUpload → submitUploaded or abandonUpload). */
export interface InputUpload {
  readonly id: string;
  /** Where its blobs go: write input `which`'s data (float32, bhsd) at byte offsets of `blobNames.input(id, which)`. */
  readonly store: BlobStore;
}

/**
 * An input of submitUploaded: `{ shape }` when its float32 bhsd data is already in the upload's
 * input blob (unsealed; the uploader checked its values are finite unless allowNonfinite), or
 * `{ ref }` of a file (any format, dtype and layout), validated and converted as submit() does.
 */
export type UploadedInput = { shape: readonly number[] } | { ref: string };

/** What submitUploaded needs: a JobRequest's options with the inputs as uploaded. */
export type UploadedJob = Omit<JobRequest, 'q' | 'k' | 'v' | 'out' | 'lse' | 'outDtype'> & {
  inputs: Record<'q' | 'k' | 'v', UploadedInput>;
};

/** How often wait() reads progress between events, for a caller that shows it. */
const PROGRESS_POLL_MS = 250;
/** How often wait() reads the status when nobody shows progress (the root's end is an event; a cancel by another client is not). */
const STATE_POLL_MS = 1000;

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
    private readonly locations: BlobLocations,
  ) {}

  /**
   * Connects, failing fast with InputError(`--redis`) when Redis cannot be reached or does not
   * answer. `blobs`: stores this client may open for jobs it did not submit itself (`--blobs`,
   * LONGATTN_BLOBS) besides the queue's own Redis; see BlobLocations.
   */
  static async connect(url: string, options: { blobs?: readonly string[] } = {}): Promise<QueueEngine> {
    await checkReachable(url);
    return new QueueEngine(url, connectRedis(url, { commandTimeoutMs: QUEUE_DEFAULTS.commandTimeoutMs }), new BlobLocations(options.blobs));
  }

  /** The store of job `jobId` at `location`, only if this client may open it (InputError `--blobs` if not). */
  private store(location: string, jobId: string): BlobStore {
    const allowed = this.locations.check(location, jobId);
    let store = this.stores.get(allowed);
    if (!store) {
      store = openBlobStore(allowed, this.url);
      this.stores.set(allowed, store);
    }
    return store;
  }

  private get root(): Queue {
    if (!this.rootQueue) {
      this.rootQueue = new Queue(QUEUES.jobs, {
        connection: bullConnection(this.url, QUEUE_DEFAULTS.commandTimeoutMs),
        prefix: QUEUE_PREFIX,
      });
      this.rootQueue.on('error', () => {}); // faults reach the caller through the failing command
    }
    return this.rootQueue;
  }

  /** Runs a public operation: Redis not answering becomes one line naming --redis (exit 2). */
  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw redisFault(error, this.url);
    }
  }

  /**
   * Validates the request's inputs, plans it with the same plan() as the local engine (default
   * tiles: QUEUE_DEFAULTS.blockScale × the backend's), uploads Q/K/V (streamed, bhsd float32), then adds the flow. On any failure
   * nothing of the job is left in Redis or the blob store.
   */
  async submit(request: JobRequest, options: SubmitOptions = {}): Promise<{ manifest: JobManifest; output?: JobOutput }> {
    return this.guard(() => this.submitJob(request, options));
  }

  /**
   * Submits an inspect job (inspect-submit.ts): the statistics pass runs as chunk jobs after an
   * attention flow for the LSE (or on the request's --lse). The reducer writes the report and the
   * outputs asked for as blobs (inspectOutput); the request's paths are not written here.
   */
  async submitInspect(request: InspectRequest, options: InspectSubmitOptions = {}): Promise<JobManifest> {
    return this.guard(() => submitInspectJob(this.submitParts(), request, options));
  }

  /**
   * Submits a layer job (layer-submit.ts; docs/flow.md, "Layers on the queue"): projection jobs,
   * the attention flow over what they write, then o_proj jobs, all done by workers. The result is
   * Y (resultBlobs' `out`), O and LSE; the request's paths are not written here (runLayerQueue does).
   */
  async submitLayer(request: LayerRequest, options: LayerSubmitOptions = {}): Promise<JobManifest> {
    return this.guard(() => submitLayerJob(this.submitParts(), request, options));
  }

  private submitParts(): SubmitParts {
    return {
      redis: this.redis,
      store: (location, id) => this.openStore(location, id),
      addFlow: (flow) => this.flowProducer().add(flow),
      discard: async (id, store) => {
        await this.discard(id, store);
        await this.redis.del(jobKeys.hash(id));
      },
      resolveBackend,
    };
  }

  /** An inspect output of a done job (report JSON, received / weights float32 bhsd, map PNG); null when it was not asked for. */
  async inspectOutput(jobId: string, what: InspectOutput): Promise<Uint8Array | null> {
    return this.guard(async () => {
      const status = await this.readStatus(jobId);
      if (!status.manifest.inspect) throw new InputError('JOB', `job ${jobId} is not an inspect job`);
      if (status.state !== 'done')
        throw new JobFailedError(`job ${jobId} is ${status.state}${status.error ? `: ${status.error}` : ''}; its result is not available`);
      const store = this.store(status.manifest.blobs, jobId);
      const [bytes] = await store.getMany([blobNames.inspectOut(jobId, what)]);
      if (!bytes && what === 'report') throw new JobGoneError(`job ${jobId}: its result was already collected or removed`);
      return bytes ?? null;
    });
  }

  private flowProducer(): FlowProducer {
    if (!this.flows) {
      this.flows = new FlowProducer({ connection: bullConnection(this.url, QUEUE_DEFAULTS.commandTimeoutMs), prefix: QUEUE_PREFIX });
      this.flows.on('error', () => {});
    }
    return this.flows;
  }

  private async submitJob(request: JobRequest, options: SubmitOptions): Promise<{ manifest: JobManifest; output?: JobOutput }> {
    const inputs = openInputs(request);
    let output: JobOutput | undefined;
    const id = newJobId();
    const location = options.blobs ?? 'redis';
    let store: BlobStore | undefined;
    try {
      const { spec } = inputs;
      store = await this.openStore(location, id);
      const { manifest, groups } = await this.planJob(id, spec, inputs.q.shape, request, store, options);
      if (options.createOutput) output = new JobOutput(spec, inputs.q.shape, request.out, request.lse, request.outDtype);
      await recordUploading(this.redis, id, manifest);
      await uploadTensor(store, blobNames.input(id, 'q'), inputs.q, spec, spec.H, spec.Sq);
      await uploadTensor(store, blobNames.input(id, 'k'), inputs.k, spec, spec.Hk, spec.Sk);
      await uploadTensor(store, blobNames.input(id, 'v'), inputs.v, spec, spec.Hk, spec.Sk);
      await this.enqueue(id, groups);
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

  /** The job's blob store at `location` (added to the ones this client may open), checked usable. */
  private async openStore(location: string, id: string): Promise<BlobStore> {
    this.locations.add(location);
    const store = this.store(location, id);
    await store.ready();
    return store;
  }

  /**
   * Resolves the backend and tiles (QUEUE_DEFAULTS.blockScale × the backend's by default), plans
   * with the same plan() as the local engine, and groups the tiles into BullMQ jobs.
   */
  private async planJob(
    id: string,
    spec: AttentionSpec,
    qShape: readonly number[],
    request: Pick<JobRequest, 'backend' | 'blockQ' | 'blockK'>,
    store: BlobStore,
    options: SubmitOptions,
  ): Promise<{ manifest: JobManifest; groups: ReduceGroup[] }> {
    const { backend, blocks: defaults } = await resolveBackend(linearBackend(spec, request.backend) ?? request.backend ?? 'auto');
    const blocks = resolveBlocks(request, spec.linear ? LINEAR_BLOCKS : strideBlocks(spec, defaults));
    const thePlan = plannedWithinLimits(spec, blocks, planLimits(options.limits), 'queue');
    const groups = batchPlan(thePlan, options);
    const manifest = planManifest({ id, spec, qShape: [...qShape], ...blocks, backend, blobs: store.location }, thePlan, groups);
    return { manifest, groups };
  }

  /** Marks the job queued (its inputs all in place) and adds its flow. */
  private async enqueue(id: string, groups: ReduceGroup[]): Promise<void> {
    await this.redis.hset(jobKeys.hash(id), 'state', 'queued');
    await this.flowProducer().add(buildFlow(id, groups));
  }

  /**
   * Starts a job whose inputs are uploaded straight into its blob store (the HTTP API's uploads:
   * each byte written once, in its final place). The job's record (state `uploading`) is written
   * first, so reducers' sweeps leave its blobs alone; it expires with unfinished jobs if the
   * uploader dies. Follow with submitUploaded, or abandonUpload on failure.
   */
  async openUpload(location: string): Promise<InputUpload> {
    return this.guard(async () => {
      const id = newJobId();
      const store = await this.openStore(location, id);
      await recordUploading(this.redis, id);
      return { id, store };
    });
  }

  /**
   * Submits an upload's job: validates the inputs' shapes and the options as submit() does
   * (InputError naming `--q`… or the option), converts the inputs given as files, seals the ones
   * already in place, plans and adds the flow. On any failure nothing of the job is left.
   */
  async submitUploaded(upload: InputUpload, job: UploadedJob, options: SubmitOptions = {}): Promise<{ manifest: JobManifest }> {
    const { id, store } = upload;
    const files: Partial<Record<'q' | 'k' | 'v', TensorReader>> = {};
    try {
      return await this.guard(async () => {
        const which = ['q', 'k', 'v'] as const;
        const refs = which.filter((w) => 'ref' in job.inputs[w]);
        const opened = openTensors(refs.map((w) => ({ ref: (job.inputs[w] as { ref: string }).ref, argument: `--${w}` })));
        for (const [i, w] of refs.entries()) files[w] = opened[i];
        const shape = (w: (typeof which)[number]) => files[w]?.shape ?? (job.inputs[w] as { shape: readonly number[] }).shape;
        const spec: AttentionSpec = {
          ...validateSpec({ q: shape('q'), k: shape('k'), v: shape('v') }, job.options),
          ...(job.allowNonfinite ? { allowNonfinite: true } : {}),
        };
        if (!job.allowNonfinite) {
          for (const t of Object.values(files)) {
            const at = t.findNonFinite();
            if (at >= 0)
              throw new InputError(
                t.argument,
                `non-finite value at flat index ${at} of "${t.ref}" (pass --allow-nonfinite to let NaN/Inf through)`,
              );
          }
        }
        const { manifest, groups } = await this.planJob(id, spec, shape('q'), job, store, options);
        await this.redis.hset(jobKeys.hash(id), 'manifest', encodeManifest(manifest));
        for (const w of which) {
          const [heads, seq] = w === 'q' ? [spec.H, spec.Sq] : [spec.Hk, spec.Sk];
          const file = files[w];
          if (file) await uploadTensor(store, blobNames.input(id, w), file, spec, heads, seq);
          else await sealInput(store, blobNames.input(id, w), spec, heads, seq);
        }
        await this.enqueue(id, groups);
        return { manifest };
      });
    } catch (error) {
      await this.abandonUpload(upload).catch(() => {});
      throw error;
    } finally {
      for (const t of Object.values(files)) t.close();
    }
  }

  /** Removes everything of an upload that will not be submitted: its blobs and its record. */
  async abandonUpload(upload: InputUpload): Promise<void> {
    await this.discard(upload.id, upload.store);
    await this.redis.del(jobKeys.hash(upload.id));
  }

  /**
   * The job's state and progress; InputError(`JOB`) for a malformed or unknown id,
   * BadManifestError for a record this build did not write.
   */
  async status(jobId: string): Promise<QueueJobStatus> {
    return this.guard(() => this.readStatus(jobId));
  }

  private async readStatus(jobId: string): Promise<QueueJobStatus> {
    checkJobId(jobId);
    // The record and whether a root failed in one round trip (status is read on every API poll and
    // SSE wake): every root a job may have — an inspect job's statistics pass (JOB-i), a layer
    // job's projection stages (JOB-p, JOB-y); a root a job does not have reads as not failed.
    const roots = flowIds.roots(jobId);
    const [record, failedAt] = await readRecordAndFailed(this.redis, jobId, roots);
    if (!record?.manifest)
      throw new InputError(
        'JOB',
        `no job ${JSON.stringify(jobId)} in this Redis (finished jobs are kept ${QUEUE_DEFAULTS.keepFinishedSeconds / 86400} days)`,
      );
    const manifest = decodeManifest(record.manifest, jobId);
    let state = (record.state ?? 'queued') as QueueJobStatus['state'];
    let error = record.error;
    if (state === 'queued') {
      // A root BullMQ failed without the job's hash saying so (a child stalled out): its reason is read only then.
      for (const [i, id] of roots.entries()) {
        if (failedAt[i] === null) continue;
        state = 'failed';
        error ??= (await Job.fromId(this.root, id))?.failedReason ?? '';
      }
      if (state === 'queued' && record.startedAt) state = 'running';
    }
    const workers = Object.entries(record).filter(([field]) => field.startsWith('w:'));
    const declined = Object.entries(record).filter(([field]) => field.startsWith('d:'));
    const unique = (values: string[]) => [...new Set(values)].sort();
    const waiting =
      !isFinished(state as JobState) && workers.length === 0 && declined.length > 0
        ? `needs backend ${manifest.backend}; declined by ${declined.length} worker${declined.length === 1 ? '' : 's'} ` +
          `(${declined
            .slice(0, 3)
            .map(([field, why]) => `${field.slice(2)}: ${why}`)
            .join('; ')})`
        : undefined;
    return {
      jobId,
      state,
      ...(error ? { error } : {}),
      // Inspect jobs: the chunks count as tiles, their float64 work as flops (both passes in one bar).
      progress: {
        doneTiles: Math.min(numberField(record, 'tiles') ?? 0, manifest.tileCount + (manifest.inspect?.chunks ?? 0)),
        totalTiles: manifest.tileCount + (manifest.inspect?.chunks ?? 0),
        // Layer jobs: the projections' work joins the flops (every stage in one bar); tiles stay the attention's.
        doneFlops: Math.min(
          numberField(record, 'flops') ?? 0,
          manifest.flops + (manifest.inspect?.flops ?? 0) + (manifest.layer?.flops ?? 0),
        ),
        totalFlops: manifest.flops + (manifest.inspect?.flops ?? 0) + (manifest.layer?.flops ?? 0),
      },
      computedTiles: numberField(record, 'computed') ?? 0,
      manifest,
      ...(record.submittedAt ? { submittedAt: Number(record.submittedAt) } : {}),
      ...(record.startedAt ? { startedAt: Number(record.startedAt) } : {}),
      ...(record.inspectStartedAt ? { inspectStartedAt: Number(record.inspectStartedAt) } : {}),
      ...(record.scores ? { scores: record.scores } : {}),
      ...(record.attentionAt ? { attentionAt: Number(record.attentionAt) } : {}),
      ...(record.outAt ? { outAt: Number(record.outAt) } : {}),
      ...(record.finishedAt ? { finishedAt: Number(record.finishedAt) } : {}),
      backends: unique(workers.map(([, v]) => v.split('|')[0]!)),
      devices: unique(workers.map(([, v]) => v.split('|').slice(1).join('|'))),
      workers: workers.length,
      ...(waiting ? { waiting } : {}),
    };
  }

  /**
   * Waits until the job is done, reporting progress: with `onProgress`, tile counts are polled
   * every PROGRESS_POLL_MS and reduce jobs' completions wake it at once; without, nothing reads
   * progress and the status is read every STATE_POLL_MS (what no event announces: a cancel by
   * another client, a Redis outage). Either way the root's completion or failure (QueueEvents)
   * wakes it at once. Throws when the job failed or was cancelled. Aborting the signal cancels the job.
   */
  async wait(jobId: string, options: { onProgress?: (p: Progress) => void; signal?: AbortSignal } = {}): Promise<QueueJobStatus> {
    checkJobId(jobId);
    let wake: (() => void) | undefined;
    const kick = () => wake?.();
    const connection = bullConnection(this.url); // blocking reads: no command timeout
    const pollMs = options.onProgress ? PROGRESS_POLL_MS : STATE_POLL_MS;
    // Reduce completions (a few per job, not one per tile) wake the loop only for progress; the root's end always.
    const reduceEvents = options.onProgress ? new QueueEvents(QUEUES.reduce, { connection, prefix: QUEUE_PREFIX }) : undefined;
    const rootEvents = new QueueEvents(QUEUES.jobs, { connection, prefix: QUEUE_PREFIX });
    const events = reduceEvents ? [reduceEvents, rootEvents] : [rootEvents];
    for (const e of events) e.on('error', () => {}); // the poll below notices a dead Redis
    reduceEvents?.on('completed', ({ jobId: child }) => {
      if (child.startsWith(`${jobId}-`)) kick();
    });
    const ours = (root: string) => flowIds.roots(jobId).includes(root);
    rootEvents.on('completed', ({ jobId: root }) => {
      if (ours(root)) kick();
    });
    rootEvents.on('failed', ({ jobId: root }) => {
      if (ours(root)) kick();
    });
    const onAbort = () => kick();
    options.signal?.addEventListener('abort', onAbort);
    try {
      let last = '';
      let answered = Date.now();
      for (;;) {
        if (options.signal?.aborted) {
          await this.cancel(jobId);
          throw new JobCancelledError(`job ${jobId} cancelled`);
        }
        let status: QueueJobStatus;
        try {
          status = await withinCommandTimeout(this.readStatus(jobId));
          answered = Date.now();
        } catch (error) {
          // A Redis restart is ridden out (connections reconnect); a longer silence ends the wait.
          if (!isRedisFault(error) || Date.now() - answered > QUEUE_DEFAULTS.outageMs) throw redisFault(error, this.url);
          await sleep(pollMs);
          continue;
        }
        const seen = `${status.progress.doneTiles}/${status.progress.doneFlops}`;
        if (seen !== last) {
          options.onProgress?.({ ...status.progress });
          last = seen;
        }
        if (status.state === 'done') return status;
        if (status.state === 'failed') throw new JobFailedError(`job ${jobId} failed: ${status.error ?? 'unknown error'}`);
        if (status.state === 'cancelled') throw new JobCancelledError(`job ${jobId} was cancelled`);
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(pollMs)]);
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      const force = () => {
        for (const e of events) void e.disconnect().catch(() => {});
      };
      await closeWithin(2000, () => Promise.all(events.map((e) => e.close())), force);
    }
  }

  /** Writes a done job's O and LSE through `output` (atomic files), then commits it. */
  async download(jobId: string, output: JobOutput): Promise<void> {
    return this.guard(() => this.downloadJob(jobId, output));
  }

  private async downloadJob(jobId: string, output: JobOutput): Promise<void> {
    const { manifest, store, out, lse } = await this.findResult(jobId);
    if (manifest.layer) {
      output.abort();
      throw new InputError('JOB', `job ${jobId} is a layer job: its result is Y (GET /v1/jobs/${jobId}/result/out)`);
    }
    try {
      await downloadOutputs(store, { out, lse }, manifest.spec, output);
      output.commit();
    } catch (error) {
      output.abort();
      throw error;
    }
  }

  /**
   * A done job's result blobs as stored: O [B, H, Sq, D] and LSE [B, H, Sq], float32 in bhsd
   * order, which for bhsd inputs is also the output files' order, so they can be streamed as they
   * are (the HTTP API's results). JobFailedError while not done, JobGoneError once collected.
   */
  async resultBlobs(jobId: string): Promise<{ manifest: JobManifest; store: BlobStore; out: string; lse: string }> {
    return this.guard(() => this.findResult(jobId));
  }

  private async findResult(jobId: string): Promise<{ manifest: JobManifest; store: BlobStore; out: string; lse: string }> {
    const status = await this.readStatus(jobId);
    if (status.manifest.inspect)
      throw new InputError('JOB', `job ${jobId} is an inspect job: it has a report, not O and LSE (GET /v1/jobs/${jobId}/result/report)`);
    if (status.state !== 'done')
      throw new JobFailedError(`job ${jobId} is ${status.state}${status.error ? `: ${status.error}` : ''}; its result is not available`);
    const store = this.store(status.manifest.blobs, jobId);
    // A layer job's result is Y (its O stays beside it, blobNames.out, for --attn-out).
    const out = status.manifest.layer ? blobNames.layerOut(jobId) : blobNames.out(jobId);
    if (!(await store.header(out))) throw new JobGoneError(`job ${jobId}: its result was already collected or removed`);
    return { manifest: status.manifest, store, out, lse: blobNames.lse(jobId) };
  }

  /**
   * Cancels a job: marks it cancelled (workers stop taking its tiles), removes its flow (waiting
   * for in-flight jobs to let go) and deletes its blobs. On a finished job it discards the result.
   * Returns the state it had.
   */
  async cancel(jobId: string): Promise<QueueJobStatus['state']> {
    return this.guard(async () => {
      const status = await this.readStatus(jobId);
      const store = this.store(status.manifest.blobs, jobId); // refused before anything changes
      await store.ready(); // a blob server that does not answer: InputError(--blobs) now, not a hang later
      if (!isFinished(status.state as JobState)) {
        await this.redis.hset(jobKeys.hash(jobId), 'state', 'cancelled', 'finishedAt', String(Date.now()));
      }
      await this.redis.expire(jobKeys.hash(jobId), QUEUE_DEFAULTS.keepFinishedSeconds);
      await this.discard(jobId, store);
      return status.state;
    });
  }

  /** Removes everything of a job: flow, blobs, record (after its result was collected). */
  async remove(jobId: string): Promise<void> {
    return this.guard(async () => {
      const status = await this.readStatus(jobId);
      await this.discard(jobId, this.store(status.manifest.blobs, jobId));
      await this.redis.del(jobKeys.hash(jobId));
    });
  }

  /** Removes a job's flow and blobs, keeping its record. A locked (in-flight) job is retried until released. */
  private async discard(jobId: string, store: BlobStore | undefined): Promise<void> {
    // Roots in the order each adds the next (flowIds.roots): an inspect job's finalise adds the
    // statistics pass (JOB-i) while it holds its lock, so once JOB is gone, JOB-i exists or never will.
    for (const root of flowIds.roots(jobId)) {
      for (let tries = 0; ; tries++) {
        const state = await this.root.getJobState(root);
        if (state === 'unknown') break;
        if ((await this.root.remove(root, { removeChildren: true })) === 1) break;
        if (tries >= 200) throw new Error(`job ${jobId}: its flow is still locked by a worker after 30 s`);
        await sleep(150);
      }
    }
    await store?.deletePrefix(`${jobId}/`);
    await this.redis.del(jobKeys.reduced(jobId), jobKeys.records(jobId), jobKeys.chunks(jobId), jobKeys.projected(jobId));
  }

  /** Closes every connection; within 2 s even when Redis is gone (then they are dropped). */
  async close(): Promise<void> {
    const force = () => {
      this.redis.disconnect();
      void this.flows?.disconnect().catch(() => {});
      void this.rootQueue?.disconnect().catch(() => {});
    };
    await closeWithin(
      2000,
      async () => {
        await Promise.all([this.flows?.close(), this.rootQueue?.close(), ...[...this.stores.values()].map((s) => s.close())]);
        await this.redis.quit();
      },
      force,
    );
  }
}

/**
 * A job's backend, resolved once at submit: `auto` becomes what this (the submitter's) machine
 * picks, so every worker computes the job on the same backend and its bits equal the local
 * engine's there; a name is checked to exist (it need not run here: workers run it). Default
 * tiles: the backend's, scaled by QUEUE_DEFAULTS.blockScale.
 */
async function resolveBackend(requested: string): Promise<{ backend: string; blocks: { blockQ: number; blockK: number } }> {
  let backend = requested;
  let blocks: { blockQ: number; blockK: number };
  if (requested === 'auto') {
    const selection = await autoBackend();
    backend = selection.name;
    blocks = selection.backend.defaultBlocks;
  } else {
    try {
      blocks = getBackend(parseBackendName(requested).name).defaultBlocks;
    } catch (error) {
      throw new InputError('--backend', (error as Error).message);
    }
  }
  const { rows, keys } = QUEUE_DEFAULTS.blockScale;
  return { backend, blocks: { blockQ: blocks.blockQ * rows, blockK: blocks.blockK * keys } };
}

let autoSelection: ReturnType<typeof selectBackend> | undefined;

/**
 * What `auto` resolves to on this machine, probed once per process: a probe builds and runs a
 * kernel (an onnxruntime session for ort, a child process for a GPU backend), which cost the HTTP
 * API 5–30 ms of CPU on every submit here (scripts/bench-api.ts small). A failed probe is retried.
 */
function autoBackend(): ReturnType<typeof selectBackend> {
  autoSelection ??= selectBackend('auto', { threads: 1 });
  autoSelection.catch(() => (autoSelection = undefined));
  return autoSelection;
}

/**
 * `work`, or a 'Command timed out' error (a Redis fault) after QUEUE_DEFAULTS.commandTimeoutMs.
 * readStatus may ask BullMQ's own connection (the root job's state), which has no command
 * timeout: with Redis gone it would wait for a reconnect forever, and `wait` would never reach
 * its outage limit (seen as a hang in the Redis-killed test, about one run in three).
 */
async function withinCommandTimeout<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('Command timed out')), QUEUE_DEFAULTS.commandTimeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
