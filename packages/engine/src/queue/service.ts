import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { InputError } from '@longattn/tensor';
import { recordFailure } from './job-record.ts';

/** A started worker or reducer. */
export interface RunningService {
  /** Worker name BullMQ stores on the jobs it takes. */
  readonly id: string;
  /** One line for the log: what runs, where, how. */
  readonly description: string;
  /** Graceful stop: finishes (or hands back) in-flight jobs, closes connections. */
  close(): Promise<void>;
}

/**
 * Wraps a processor: bad input (InputError) becomes UnrecoverableError (retrying cannot fix it);
 * a job's last failure is recorded in its hash so `status` can say why, in one line.
 */
export function recordingFailures<T extends { job: string }, R>(
  redis: Redis,
  processor: (job: Job<T>, token: string | undefined, signal: AbortSignal | undefined) => Promise<R>,
): (job: Job<T>, token?: string, signal?: AbortSignal) => Promise<R> {
  return async (job, token, signal) => {
    try {
      return await processor(job, token, signal);
    } catch (caught) {
      if (caught instanceof DelayedError) throw caught;
      const error = caught instanceof InputError ? new UnrecoverableError(caught.message) : (caught as Error);
      const final = error instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (final) await recordFailure(redis, job.data.job, `${job.name} ${job.id}: ${error.message}`).catch(() => {});
      throw error;
    }
  };
}

/** Runs a service until SIGTERM/SIGINT, then closes it gracefully and exits 0. */
export function closeOnSignals(service: RunningService, log: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      log(`${service.id}: ${signal}, finishing in-flight jobs`);
      service.close().then(
        () => {
          log(`${service.id}: stopped`);
          resolve();
        },
        (error: Error) => {
          log(`${service.id}: stopped with error: ${error.message}`);
          resolve();
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
