import { jobResult, type JobRequest, type JobResult, type Progress } from '../job.ts';
import { JobCancelledError } from '../errors.ts';
import { QueueEngine, type SubmitOptions } from './queue-engine.ts';

export interface QueueRunOptions extends Omit<SubmitOptions, 'createOutput'> {
  /** Redis URL of the queue (`--redis`). */
  redis: string;
  onProgress?: (progress: Progress) => void;
  /** Aborting cancels the job and removes its outputs (also while it is being submitted, and with detach). */
  signal?: AbortSignal;
  /** Submit and return { jobId } at once; collect later with `longattn result`. */
  detach?: boolean;
}

/**
 * `longattn run --engine queue`: submits the job to Redis (inputs uploaded, one BullMQ flow),
 * waits with progress while workers and reducers compute it, downloads O and LSE atomically to
 * request.out / request.lse, and removes every trace of the job from Redis. With the same inputs,
 * backend and blocks, the output is bit-identical to runLocal's. Redis unreachable → InputError
 * (`--redis`) before anything is created.
 */
export async function runQueue(request: JobRequest, options: QueueRunOptions & { detach: true }): Promise<{ jobId: string }>;
export async function runQueue(request: JobRequest, options: QueueRunOptions & { detach?: false }): Promise<JobResult>;
export async function runQueue(request: JobRequest, options: QueueRunOptions): Promise<JobResult | { jobId: string }>;
export async function runQueue(request: JobRequest, options: QueueRunOptions): Promise<JobResult | { jobId: string }> {
  const started = performance.now();
  const engine = await QueueEngine.connect(options.redis);
  try {
    const { redis: _redis, onProgress, signal, detach, ...submitOptions } = options;
    const { manifest, output } = await engine.submit(request, { ...submitOptions, createOutput: !detach });
    if (signal?.aborted) {
      // Interrupted while uploading: the job this call owns goes, whether detached or not.
      output?.abort();
      await engine.cancel(manifest.id);
      throw new JobCancelledError(`job ${manifest.id} cancelled`);
    }
    if (detach || !output) return { jobId: manifest.id };
    const queued = performance.now();
    let status: Awaited<ReturnType<QueueEngine['wait']>>;
    try {
      status = await engine.wait(manifest.id, { ...(onProgress ? { onProgress } : {}), ...(signal ? { signal } : {}) });
    } catch (error) {
      output.abort();
      throw error;
    }
    const computeMs = performance.now() - queued;
    await engine.download(manifest.id, output);
    await engine.remove(manifest.id);
    return jobResult(request, manifest, {
      backend: manifest.backend,
      device: status.devices.join('; '),
      engine: 'queue',
      threads: status.workers,
      wallMs: performance.now() - started,
      computeMs,
    });
  } finally {
    await engine.close();
  }
}
