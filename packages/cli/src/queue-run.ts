import type { JobRequest, JobResult, Progress } from '@longattn/engine';
import { runQueue } from '@longattn/engine/queue';
import { InputError } from '@longattn/tensor';
import { interruptible } from './signals.ts';

function redisUrl(flags: { redis?: string }): string {
  if (!flags.redis) throw new InputError('--redis', 'required with --engine queue (e.g. --redis redis://127.0.0.1:6379)');
  return flags.redis;
}

/** `--blobs`: where the job's bytes live (default: the queue's Redis). */
function blobs(flags: { blobs?: string }): { blobs?: string } {
  return flags.blobs ? { blobs: flags.blobs } : {};
}

/**
 * `--engine queue`: submit to Redis, wait with progress while workers compute, download O/LSE.
 * `signal` (the command's, from signals.ts: SIGINT/SIGTERM) cancels the job this command owns.
 */
export async function runOnQueue(
  request: JobRequest,
  flags: { redis?: string; blobs?: string },
  onProgress: (p: Progress) => void,
  signal?: AbortSignal,
): Promise<JobResult> {
  const redis = redisUrl(flags);
  return runQueue(request, { redis, ...blobs(flags), onProgress, ...(signal ? { signal } : {}) });
}

/**
 * `run --detach`: submit and return the job id at once; collect later with `longattn result`.
 * A signal during the upload cancels the job; once the id is printed the job is the caller's
 * (stop it with `longattn cancel JOB`).
 */
export async function submitDetached(request: JobRequest, flags: { engine: string; redis?: string; blobs?: string }): Promise<string> {
  if (flags.engine !== 'queue') throw new InputError('--detach', 'needs --engine queue (the local engine runs in this process)');
  const redis = redisUrl(flags);
  const { jobId } = await interruptible((signal) => runQueue(request, { redis, ...blobs(flags), detach: true, signal }));
  return jobId;
}
