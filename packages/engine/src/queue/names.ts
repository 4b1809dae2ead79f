import { randomBytes } from 'node:crypto';
import { QueueKeys } from 'bullmq';

/**
 * Every Redis name the queue engine uses, built in one place.
 *
 * Queues share one prefix whose hash tag `{longattn}` puts every key of a flow in one Redis
 * Cluster slot (BullMQ's flows run multi-key Lua scripts across the three queues):
 *   tiles  — tile jobs (workers), reduce — q-block merges (reducers), jobs — finalise (reducers).
 */
export const QUEUE_PREFIX = 'bull:{longattn}';
export const QUEUES = { tiles: 'tiles', reduce: 'reduce', jobs: 'jobs' } as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** A BullMQ key of one of our queues, e.g. queueKey('tiles', 'wait') = `bull:{longattn}:tiles:wait` (KEDA's list). */
export function queueKey(queue: QueueName, type: string): string {
  return new QueueKeys(QUEUE_PREFIX).toKey(queue, type);
}

/** A new job id: `la-<time36>-<hex>`, never containing ':' nor all digits (BullMQ's rules). */
export function newJobId(): string {
  return `la-${Date.now().toString(36)}-${randomBytes(5).toString('hex')}`;
}

export { checkJobId, isJobId, MAX_JOB_ID_LENGTH } from './job-id.ts';

/** The BullMQ ids of a job's flow nodes: derived, so re-adding is a no-op and cancel can find them. */
export const flowIds = {
  root: (job: string) => job,
  reduce: (job: string, i: number) => `${job}-r${i}`,
  tile: (job: string, i: number) => `${job}-t${i}`,
  /** Inspect jobs: the statistics pass's root (queue jobs) and its chunk jobs (queue tiles). */
  inspect: (job: string) => `${job}-i`,
  chunk: (job: string, i: number) => `${job}-c${i}`,
  /** Layer jobs: the projection stage's root (queue jobs), the o_proj stage's root, their projection jobs (queue tiles). */
  layerIn: (job: string) => `${job}-p`,
  layerOut: (job: string) => `${job}-y`,
  project: (job: string, i: number) => `${job}-j${i}`,
  /**
   * Every root a job may have, in the order each adds the next (a layer's JOB-p adds JOB, JOB adds
   * JOB-i or JOB-y, each while holding its lock): removing them in this order orphans none.
   */
  roots: (job: string) => [`${job}-p`, job, `${job}-i`, `${job}-y`],
  /** The job a flow node belongs to (any of the ids above → JOB): a job id has no third '-'. */
  jobOf: (node: string) => node.replace(/^(la-[0-9a-z]+-[0-9a-f]+)-[a-z]\d*$/, '$1'),
};

/** Our own keys beside BullMQ's, in the same hash-tag slot. */
export const jobKeys = {
  /**
   * HASH: manifest, state, error, counters (tiles, flops, computed), timestamps, w:<worker> = backend|device;
   * per split q-block while it is recorded and merged, s:<q-block> (tiles recorded) and r:<q-block> (its parts' first tiles, progress.ts).
   */
  hash: (job: string) => `{longattn}:job:${job}`,
  /**
   * SET of q-block indices whose output rows are written — by the worker for a whole q-block, by
   * the reducer for a split one. Retried tile and reduce jobs skip them; finalise counts them.
   */
  reduced: (job: string) => `{longattn}:job:${job}:reduced`,
  /**
   * SET of record ids (one per finished tile-job run): a record that reaches Redis twice — the
   * client resends a command whose reply a Redis restart cut off — counts once.
   */
  records: (job: string) => `{longattn}:job:${job}:records`,
  /** SET of an inspect job's chunk indices whose results are stored (progress counts each once). */
  chunks: (job: string) => `{longattn}:job:${job}:chunks`,
  /** SET of a layer job's projection-block indices whose rows are written (progress counts each once). */
  projected: (job: string) => `{longattn}:job:${job}:projected`,
};

export { blobNames } from './blob-layout.ts';
