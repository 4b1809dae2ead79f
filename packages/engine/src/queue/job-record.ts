import type { Redis } from 'ioredis';
import { QUEUE_DEFAULTS } from './config.ts';
import { jobKeys } from './names.ts';

/**
 * A job's hash (jobKeys.hash) holds: manifest, state (uploading | queued | done | failed |
 * cancelled), error, submittedAt, startedAt, finishedAt, counters tiles / flops (progress,
 * stored partials) and computed (kernel runs), and w:<worker id> = "backend|device".
 */
export type JobRecord = Record<string, string>;

export async function readRecord(redis: Redis, id: string): Promise<JobRecord | null> {
  const record = await redis.hgetall(jobKeys.hash(id));
  return Object.keys(record).length === 0 ? null : record;
}

/**
 * Sets state = failed with the error, unless the job was cancelled, finished or removed meanwhile;
 * the record then expires after QUEUE_DEFAULTS.keepFinishedSeconds (its blobs go at the next sweep).
 */
export async function recordFailure(redis: Redis, id: string, message: string): Promise<void> {
  await redis.eval(
    `local s = redis.call('HGET', KEYS[1], 'state')
     if s == 'queued' or s == 'uploading' then
       redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[1], 'finishedAt', ARGV[2])
       redis.call('EXPIRE', KEYS[1], ARGV[3])
     end
     return 0`,
    1,
    jobKeys.hash(id),
    message.split('\n')[0]!.slice(0, 500),
    String(Date.now()),
    String(QUEUE_DEFAULTS.keepFinishedSeconds),
  );
}
