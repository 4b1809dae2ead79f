import type { Plan } from '@longattn/attention';
import { QUEUE_DEFAULTS } from './config.ts';

/** Tiles [from, to) of q-block `qBlock` (its index in plan.qBlocks), in key order. */
export type TileRun = [qBlock: number, from: number, to: number];

/** One reduce job: q-blocks [from, to) and the tile jobs computing their tiles. */
export interface ReduceGroup {
  from: number;
  to: number;
  tileJobs: TileRun[][];
}

export interface BatchOptions {
  /** Exactly this many tiles per tile job (tests, overhead benchmarks). Default: by FLOPs. */
  tilesPerJob?: number;
  /** Target kernel FLOPs per tile job. Default QUEUE_DEFAULTS.jobFlops, fewer for small problems. */
  jobFlops?: number;
}

/**
 * Groups a plan's tiles into BullMQ jobs: consecutive q-blocks (plan order: b, h, qBlock, so a
 * group shares K/V blocks) form a reduce job; its tiles, in order, are cut into tile jobs of
 * about `jobFlops` of kernel work each (a job covers many kernel tiles: queue overhead is
 * ~1 ms per job). Deterministic; the output bits never depend on it.
 */
export function batchPlan(plan: Plan, options: BatchOptions = {}): ReduceGroup[] {
  const { D } = plan.spec;
  const byCount = options.tilesPerJob !== undefined;
  const jobTarget = byCount
    ? options.tilesPerJob!
    : (options.jobFlops ?? Math.min(QUEUE_DEFAULTS.jobFlops, plan.flops / QUEUE_DEFAULTS.minTileJobs));
  const groupTarget = jobTarget * QUEUE_DEFAULTS.tileJobsPerReduce;
  const groups: ReduceGroup[] = [];
  let group: ReduceGroup = { from: 0, to: 0, tileJobs: [] };
  let job: TileRun[] = [];
  let jobCost = 0;
  let groupCost = 0;
  const closeJob = () => {
    if (job.length > 0) group.tileJobs.push(job);
    job = [];
    jobCost = 0;
  };
  plan.qBlocks.forEach((block, qi) => {
    block.tiles.forEach((tile, ti) => {
      const cost = byCount ? 1 : 4 * tile.rows * tile.keys * D;
      const last = job[job.length - 1];
      if (last && last[0] === qi && last[2] === ti) last[2] = ti + 1;
      else job.push([qi, ti, ti + 1]);
      jobCost += cost;
      groupCost += cost;
      if (jobCost >= jobTarget) closeJob();
    });
    group.to = qi + 1;
    if (groupCost >= groupTarget || group.to - group.from >= QUEUE_DEFAULTS.maxQBlocksPerReduce) {
      closeJob();
      groups.push(group);
      group = { from: qi + 1, to: qi + 1, tileJobs: [] };
      groupCost = 0;
    }
  });
  closeJob();
  if (group.to > group.from) groups.push(group);
  return groups;
}
