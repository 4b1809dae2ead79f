import type { JobRequest, JobResult, Progress } from '@longattn/engine';
import { JobCancelledError, runQueue } from '@longattn/engine/queue';
import { InputError } from '@longattn/tensor';

function redisUrl(flags: { redis?: string }): string {
  if (!flags.redis) throw new InputError('--redis', 'required with --engine queue (e.g. --redis redis://127.0.0.1:6379)');
  return flags.redis;
}

/** `--blobs`: where the job's bytes live (default: the queue's Redis). */
function blobs(flags: { blobs?: string }): { blobs?: string } {
  return flags.blobs ? { blobs: flags.blobs } : {};
}

/** Exit codes for a signal, as shells report them: 128 + its number. */
const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

/**
 * Runs `work` with an AbortSignal that SIGINT/SIGTERM abort: the queue job this command owns is
 * cancelled (its flow and blobs removed), one line says so, and the process exits 130 / 143.
 * A second signal exits at once.
 */
async function cancellingOnSignals<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  let caught: keyof typeof SIGNAL_EXIT | undefined;
  const on = (name: keyof typeof SIGNAL_EXIT) => () => {
    if (caught) process.exit(SIGNAL_EXIT[caught]);
    caught = name;
    process.stderr.write(`\nlongattn: ${name}: cancelling the queued job…\n`);
    abort.abort();
  };
  const onInt = on('SIGINT');
  const onTerm = on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    return await work(abort.signal);
  } catch (error) {
    if (caught && error instanceof JobCancelledError) {
      process.stderr.write(`longattn: ${error.message} (${caught})\n`);
      process.exit(SIGNAL_EXIT[caught]);
    }
    throw error;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

/** `--engine queue`: submit to Redis, wait with progress while workers compute, download O/LSE; a signal cancels the job. */
export async function runOnQueue(
  request: JobRequest,
  flags: { redis?: string; blobs?: string },
  onProgress: (p: Progress) => void,
): Promise<JobResult> {
  const redis = redisUrl(flags);
  return cancellingOnSignals((signal) => runQueue(request, { redis, ...blobs(flags), onProgress, signal }));
}

/**
 * `run --detach`: submit and return the job id at once; collect later with `longattn result`.
 * A signal during the upload cancels the job; once the id is printed the job is the caller's
 * (stop it with `longattn cancel JOB`).
 */
export async function submitDetached(request: JobRequest, flags: { engine: string; redis?: string; blobs?: string }): Promise<string> {
  if (flags.engine !== 'queue') throw new InputError('--detach', 'needs --engine queue (the local engine runs in this process)');
  const redis = redisUrl(flags);
  const { jobId } = await cancellingOnSignals((signal) => runQueue(request, { redis, ...blobs(flags), detach: true, signal }));
  return jobId;
}
