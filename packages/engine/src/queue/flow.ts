import type { FlowJob } from 'bullmq';
import type { ReduceGroup, TileRun } from './batching.ts';
import { childOptions, rootOptions } from './job-options.ts';
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
 * ← its tile jobs (queue tiles). Ids are derived from the job id; retries, failure propagation
 * and removal: rootOptions and childOptions (job-options.ts).
 */
export function buildFlow(id: string, groups: readonly ReduceGroup[]): FlowJob {
  let tileIndex = 0;
  return {
    name: 'finalise',
    queueName: QUEUES.jobs,
    data: { job: id } satisfies RootJobData,
    opts: rootOptions(flowIds.root(id)),
    children: groups.map((g, r) => ({
      name: 'reduce',
      queueName: QUEUES.reduce,
      data: { job: id, from: g.from, to: g.to } satisfies ReduceJobData,
      opts: childOptions(flowIds.reduce(id, r)),
      children: g.tileJobs.map((tiles) => ({
        name: 'tile',
        queueName: QUEUES.tiles,
        data: { job: id, tiles } satisfies TileJobData,
        opts: childOptions(flowIds.tile(id, tileIndex++)),
      })),
    })),
  };
}
