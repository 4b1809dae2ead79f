import type { Redis } from 'ioredis';
import { QUEUE_DEFAULTS } from './config.ts';
import { encodeManifest, type JobManifest } from './manifest.ts';
import { jobKeys, QUEUES, queueKey } from './names.ts';

/**
 * A job's hash (jobKeys.hash) holds: manifest, state (uploading | queued | done | failed |
 * cancelled), error, submittedAt, startedAt, finishedAt, counters tiles / flops (progress,
 * stored partials) and computed (kernel runs), and w:<worker id> = "backend|device".
 */
export type JobRecord = Record<string, string>;

/**
 * Creates a job's record in state `uploading` (with its manifest once planned), expiring after
 * QUEUE_DEFAULTS.keepUnfinishedSeconds unless the job is queued meanwhile: what every submit does
 * before its inputs are uploaded (docs/flow.md), so a submitter that dies leaves nothing forever.
 */
export async function recordUploading(redis: Redis, id: string, manifest?: JobManifest): Promise<void> {
  const hash = jobKeys.hash(id);
  const fields = [...(manifest ? ['manifest', encodeManifest(manifest)] : []), 'state', 'uploading', 'submittedAt', String(Date.now())];
  await redis
    .multi()
    .hset(hash, ...fields)
    .expire(hash, QUEUE_DEFAULTS.keepUnfinishedSeconds)
    .exec();
}

/**
 * The job's hash (null when gone) and, for each of `roots` (BullMQ ids in queue `jobs`), its score
 * in that queue's failed set (null unless BullMQ failed it): one round trip (MULTI).
 */
export async function readRecordAndFailed(
  redis: Redis,
  id: string,
  roots: readonly string[],
): Promise<[JobRecord | null, (string | null)[]]> {
  const failed = queueKey(QUEUES.jobs, 'failed');
  const replies = (await roots.reduce((multi, root) => multi.zscore(failed, root), redis.multi().hgetall(jobKeys.hash(id))).exec()) ?? [];
  for (const [error] of replies) if (error) throw error;
  const record = replies[0]![1] as JobRecord;
  return [Object.keys(record).length === 0 ? null : record, replies.slice(1).map(([, score]) => score as string | null)];
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
