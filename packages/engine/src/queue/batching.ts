import type { Plan } from '@longattn/attention';
import { QUEUE_DEFAULTS } from './config.ts';

/**
 * Tiles [from, to) of the q-block with plan index `qIndex` (QBlockPlan.index), in key order. A
 * run of ALL of a q-block's tiles is a whole q-block: the worker merges it itself and writes its rows.
 */
export type TileRun = [qIndex: number, from: number, to: number];

/** One reduce job: q-blocks with plan indices [from, to) and the tile jobs computing their tiles. */
export interface ReduceGroup {
  from: number;
  to: number;
  tileJobs: TileRun[][];
}

export interface BatchOptions {
  /** At most this many tiles per tile job (tests, overhead benchmarks). Default: by FLOPs. */
  tilesPerJob?: number;
  /**
   * Kernel FLOPs per tile job, the same for every job. Default: defaultJobFlops(plan)
   * (QUEUE_DEFAULTS.jobFlops, less for small problems, more for long ones), with whole q-blocks
   * packed into guided jobs (guidedJobFlops: bigger while much of the plan is left).
   */
  jobFlops?: number;
}

/**
 * The default job size, growing with the document (QUEUE_DEFAULTS): jobFlops (4 GFLOP), less for
 * small problems (at least minTileJobs jobs); for long documents up to half the longest q-block's
 * FLOPs (no q-block is split, so the reducer merges nothing) while at least wholeQBlockTileJobs
 * jobs remain; and never more than maxTileJobs jobs. Per tile job the queue costs about a
 * millisecond of Redis, reducer and submitter CPU, and a split q-block's tiles each cost a
 * partial blob and a merge (docs/scaling.md).
 */
export function defaultJobFlops(plan: Plan): number {
  const { jobFlops, minTileJobs, wholeQBlockTileJobs, maxTileJobs } = QUEUE_DEFAULTS;
  let longest = 0;
  for (let qi = 0; qi < plan.qBlockCount; qi++) longest = Math.max(longest, plan.flopsIn(qi));
  return Math.max(
    1,
    Math.min(jobFlops, plan.flops / minTileJobs),
    Math.min(longest / 2, plan.flops / wholeQBlockTileJobs),
    plan.flops / maxTileJobs,
  );
}

/**
 * The size of a default-batched tile job that starts where `left` FLOPs of the plan remain
 * (that job's included): `base` (defaultJobFlops), raised to left / guidedJobs up to
 * maxGuidedJobFlops (QUEUE_DEFAULTS). Guided self-scheduling: jobs shrink as the plan runs out,
 * so the first jobs of a mid-size document are up to 4× bigger (fewer per-job costs) and its last
 * ones are `base` (the same tail); a plan whose work is under guidedJobs · base, or whose base is
 * already maxGuidedJobFlops or more (long documents), is batched as before (docs/scaling.md, "Job size").
 */
export function guidedJobFlops(base: number, left: number): number {
  const { guidedJobs, maxGuidedJobFlops } = QUEUE_DEFAULTS;
  return Math.max(base, Math.min(maxGuidedJobFlops, left / guidedJobs));
}

/** The kv head (b·Hk + kvh) whose K/V q-block `qi` reads: query heads h·Hk/H share one. */
export function kvHeadOf(plan: Plan, qi: number): number {
  const { H, Hk } = plan.spec;
  const head = Math.floor(qi / plan.qBlocksPerHead); // b·H + h
  return Math.floor(head / H) * Hk + Math.floor((head % H) / (H / Hk));
}

/** Whether a tile run holds every tile of its q-block (the worker then writes the q-block's rows). */
export function isWholeRun(plan: Plan, [qi, from, to]: TileRun): boolean {
  return from === 0 && to === plan.tilesIn(qi) && to > 0;
}

/**
 * Groups a plan's tiles into BullMQ jobs, in plan order (b, h, qBlock: the q-blocks of one head,
 * then the next head of the same kv head, so a worker's cached K/V blocks are reused; a job's
 * q-blocks all read one kv head):
 * - whole q-blocks are packed into tile jobs of about `jobFlops` of kernel work each (≥ 30–50 ms:
 *   the queue costs ~1 ms per job; by default guided: bigger while much of the plan is left,
 *   guidedJobFlops); the worker merges each one and writes its output rows, so nothing per tile
 *   crosses the blob store;
 * - a q-block too big for one job (over 2·jobFlops, or over `tilesPerJob` tiles) has its tiles
 *   split into ⌈cost / target⌉ tile jobs of equal cost; each tile's partial goes through the
 *   blob store and the reducer merges them;
 * - consecutive tile jobs form a reduce job (about QUEUE_DEFAULTS.tileJobsPerReduce of them, cut
 *   only between q-blocks), which merges the split q-blocks and checks the whole ones.
 * Deterministic; the output bits never depend on it. A q-block's tiles are generated only when it
 * is split (costs per tile are needed); memory stays O(tile jobs + one q-block's tiles).
 */
export function batchPlan(plan: Plan, options: BatchOptions = {}): ReduceGroup[] {
  const byCount = options.tilesPerJob !== undefined;
  const target = byCount ? options.tilesPerJob! : (options.jobFlops ?? defaultJobFlops(plan));
  if (!(target > 0)) throw new RangeError(`batchPlan: tilesPerJob / jobFlops must be > 0, got ${target}`);
  const splitAbove = byCount ? target : 2 * target;
  // Default batching packs whole q-blocks into guided jobs (guidedJobFlops); `left`: the plan's FLOPs from q-block qi on.
  const guided = !byCount && options.jobFlops === undefined;
  let left = 0;
  if (guided) for (let qi = 0; qi < plan.qBlockCount; qi++) left += plan.flopsIn(qi);
  const groups: ReduceGroup[] = [];
  let group: ReduceGroup = { from: 0, to: 0, tileJobs: [] };
  let groupCost = 0;
  let job: TileRun[] = [];
  let jobCost = 0;
  let jobKv = -1;
  // The open job's target (set when its first q-block goes in); a reduce group covers about tileJobsPerReduce such jobs.
  let jobTarget = target;
  // A guided job starting at q-block qi: guidedJobFlops, evened out over the whole q-blocks left before the next
  // forced cut (the kv head's end, the reduce group's last q-block, a split q-block), so no small remnant job
  // precedes the cut; looked at only while the cut is near (≤ 4 jobs away).
  const guidedTarget = (qi: number): number => {
    const size = guidedJobFlops(target, left);
    if (size === target) return target;
    const kv = kvHeadOf(plan, qi);
    const last = Math.min(plan.qBlockCount, group.from + QUEUE_DEFAULTS.maxQBlocksPerReduce);
    let segment = 0;
    for (let j = qi; j < last && kvHeadOf(plan, j) === kv && plan.flopsIn(j) <= splitAbove; j++) {
      segment += plan.flopsIn(j);
      if (segment > 4 * size) return size;
    }
    return Math.max(target, segment / Math.max(1, Math.ceil(segment / size)));
  };
  const closeJob = () => {
    if (job.length > 0) group.tileJobs.push(job);
    job = [];
    jobCost = 0;
  };
  for (let qi = 0; qi < plan.qBlockCount; qi++) {
    const n = plan.tilesIn(qi);
    const c = byCount ? n : plan.flopsIn(qi);
    if (n > 0 && (c <= splitAbove || plan.spec.linear)) {
      // a linear q-block is small and never split
      const kv = kvHeadOf(plan, qi);
      // A job never spans two kv heads: its worker then caches one head's K/V (docs/scaling.md, "Data movement").
      // Guided jobs end at the q-block boundary nearest their target (they are sized to end evenly: guidedTarget).
      if (job.length > 0 && (jobCost + (jobTarget > target ? c / 2 : c) > jobTarget || kv !== jobKv)) closeJob();
      if (job.length === 0) jobTarget = guided ? guidedTarget(qi) : target;
      jobKv = kv;
      job.push([qi, 0, n]);
      jobCost += c;
      if (jobCost >= jobTarget) closeJob();
    } else if (n > 0) {
      closeJob();
      // before[t]: cost of tiles [0, t) of this q-block.
      const before = [0];
      for (const tile of plan.block(qi).tiles) before.push(before.at(-1)! + (byCount ? 1 : tile.flops));
      const parts = Math.min(n, Math.ceil(c / target));
      let from = 0;
      for (let p = 1; p <= parts; p++) {
        // Cut where the cost first reaches p/parts of the q-block's, leaving ≥ 1 tile per part.
        let to = p === parts ? n : from + 1;
        while (to < n - (parts - p) && before[to]! < (c * p) / parts) to++;
        group.tileJobs.push([[qi, from, to]]);
        from = to;
      }
    } // n = 0: rows the mask hides entirely; the reducer writes 0 / -Infinity.
    if (guided) left -= plan.flopsIn(qi);
    groupCost += c;
    group.to = qi + 1;
    const full = group.to - group.from >= QUEUE_DEFAULTS.maxQBlocksPerReduce;
    if (full || (groupCost >= jobTarget * QUEUE_DEFAULTS.tileJobsPerReduce && job.length === 0)) {
      closeJob();
      groups.push(group);
      group = { from: qi + 1, to: qi + 1, tileJobs: [] };
      groupCost = 0;
    }
  }
  closeJob();
  if (group.to > group.from) groups.push(group);
  return groups;
}
