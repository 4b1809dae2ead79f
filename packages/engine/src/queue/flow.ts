import type { FlowJob } from 'bullmq';
import type { ReduceGroup, TileRun } from './batching.ts';
import { QUEUE_DEFAULTS } from './config.ts';
import { flowIds, QUEUES } from './names.ts';

/** Data of a tile job: runs of tiles (indices into the job's plan). Never tensors. */
export interface TileJobData {
  job: string;
  tiles: TileRun[];
}

/** Data of a reduce job: q-blocks [from, to) of the plan. */
export interface ReduceJobData {
  job: string;
  from: number;
  to: number;
}

/** Data of the root (finalise) job. */
export interface RootJobData {
  job: string;
}

/**
 * The job's BullMQ flow: root `finalise` (queue jobs) ← one `reduce` per group (queue reduce)
 * ← its tile jobs (queue tiles). Ids are derived from the job id. A child that fails for good
 * fails its parent (failParentOnFailure), so the root never waits forever; retries back off
 * exponentially; finished children are removed (their results live in blobs); sizeLimit guards
 * against tensors in job data.
 */
export function buildFlow(id: string, groups: readonly ReduceGroup[]): FlowJob {
  const base = {
    attempts: QUEUE_DEFAULTS.attempts,
    backoff: { type: 'exponential' as const, delay: QUEUE_DEFAULTS.backoffMs },
    sizeLimit: QUEUE_DEFAULTS.sizeLimitBytes,
  };
  const child = { ...base, failParentOnFailure: true, removeOnComplete: true, removeOnFail: { age: QUEUE_DEFAULTS.keepFinishedSeconds } };
  let tileIndex = 0;
  return {
    name: 'finalise',
    queueName: QUEUES.jobs,
    data: { job: id } satisfies RootJobData,
    opts: {
      ...base,
      jobId: flowIds.root(id),
      removeOnComplete: { age: QUEUE_DEFAULTS.keepFinishedSeconds },
      removeOnFail: { age: QUEUE_DEFAULTS.keepFinishedSeconds },
    },
    children: groups.map((g, r) => ({
      name: 'reduce',
      queueName: QUEUES.reduce,
      data: { job: id, from: g.from, to: g.to } satisfies ReduceJobData,
      opts: { ...child, jobId: flowIds.reduce(id, r) },
      children: g.tileJobs.map((tiles) => ({
        name: 'tile',
        queueName: QUEUES.tiles,
        data: { job: id, tiles } satisfies TileJobData,
        opts: { ...child, jobId: flowIds.tile(id, tileIndex++) },
      })),
    })),
  };
}
