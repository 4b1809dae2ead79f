import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { InputError } from '@longattn/tensor';
import { SCORE_OVERFLOW_PREFIX, ScoreOverflowError } from '@longattn/attention';
import { BadManifestError, JobError, JobGoneError, StrayJobError } from '../errors.ts';
import { QUEUE_DEFAULTS } from './config.ts';
import { recordFailure } from './job-record.ts';
import { jobKeys } from './names.ts';

/** A started worker or reducer. */
export interface RunningService {
  /** Worker name BullMQ stores on the jobs it takes. */
  readonly id: string;
  /** One line for the log: what runs, where, how. */
  readonly description: string;
  /** Graceful stop: finishes (or hands back) in-flight jobs, closes connections. */
  close(): Promise<void>;
}

/** Errors that say nothing about the job the queue job names: it is not failed for them. */
const notTheJobs = (error: unknown) => error instanceof StrayJobError || error instanceof JobGoneError || error instanceof BadManifestError;

/**
 * Scores past float32 (ScoreOverflowError from checkMergedRows): the same inputs overflow on every
 * attempt. Thrown in a kernel thread it arrives here structured-cloned, a plain Error with the
 * same message, so the message is what identifies it.
 */
function isScoreOverflow(error: unknown): boolean {
  return error instanceof ScoreOverflowError || (error instanceof Error && error.message.startsWith(SCORE_OVERFLOW_PREFIX));
}

/**
 * Wraps a processor: bad input (InputError) and JobErrors without `retry` become
 * UnrecoverableError (retrying cannot fix them); a job's last failure is recorded in its hash
 * so `status` can say why, in one line — unless the queue job was a stray, or the job it names
 * is gone or not one of ours.
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
      const unrecoverable = caught instanceof InputError || (caught instanceof JobError && !caught.retry) || isScoreOverflow(caught);
      const error = unrecoverable ? new UnrecoverableError((caught as Error).message) : (caught as Error);
      const final = error instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (final && !notTheJobs(caught)) await recordFailure(redis, job.data.job, `${job.name} ${job.id}: ${error.message}`).catch(() => {});
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

/**
 * Hands a queue job back without spending an attempt, because this process cannot serve its job
 * (the job's backend or blob store is not this process's): another worker may take it within
 * QUEUE_DEFAULTS.declineDelayMs. `status` shows the reason (field `d:<service>`) while nobody
 * computes the job.
 */
export async function decline(
  redis: Redis,
  job: Job<{ job: string }>,
  token: string | undefined,
  service: string,
  why: string,
): Promise<never> {
  await redis.eval(
    `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 0`,
    1,
    jobKeys.hash(job.data.job),
    `d:${service}`,
    why,
  );
  await job.moveToDelayed(Date.now() + QUEUE_DEFAULTS.declineDelayMs, token);
  throw new DelayedError();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
