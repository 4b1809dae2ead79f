import type { Plan, QBlockPlan } from '@longattn/attention';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { StrayJobError } from '../errors.ts';
import { isWholeRun } from './batching.ts';
import type { TileJobData } from './flow.ts';
import type { JobContext } from './job-context.ts';
import type { SplitRun } from './progress.ts';
import { blobNames, splitRuns, type SplitTile } from './blob-layout.ts';
import { flowIds, jobKeys } from './names.ts';

/**
 * A tile job's work, checked against its job's plan: whole q-blocks and split tiles (`from`: the
 * first tile of their run, which names the run's one partial blob) and their runs (recordDone counts them).
 */
export interface TileWork {
  whole: number[];
  split: SplitTile[];
  runs: SplitRun[];
  tileCount: number;
}

/**
 * Checks that a tile job belongs to the job it names: its id is one of that job's tile-job ids
 * (`JOB-tN`, N < manifest.tileJobs) and every run [qBlock, from, to) lies inside the plan.
 * Anything else is a stray (planted, or from another build): StrayJobError, which rejects the
 * queue job without failing the job it names.
 */
export function checkTileJob(job: Job<TileJobData>, ctx: JobContext): TileWork {
  const { id, tileJobs } = ctx.manifest;
  const stray = (why: string) => new StrayJobError(`tile job ${String(job.id).slice(0, 80)} is not part of job ${id}: ${why}`);
  const n = /^(.*)-t(\d+)$/.exec(String(job.id));
  if (!n || n[1] !== id || Number(n[2]) >= tileJobs || flowIds.tile(id, Number(n[2])) !== job.id)
    throw stray('not one of its tile-job ids');
  const runs = job.data.tiles;
  if (!Array.isArray(runs) || runs.length === 0) throw stray('no tile runs');
  const plan: Plan = ctx.plan;
  const work: TileWork = { whole: [], split: [], runs: [], tileCount: 0 };
  for (const run of runs) {
    const [qi, from, to] = Array.isArray(run) ? run : [];
    const known = Number.isSafeInteger(qi) && qi! >= 0 && qi! < plan.qBlockCount;
    const fits = known && Number.isSafeInteger(from) && Number.isSafeInteger(to) && from! >= 0 && from! < to! && to! <= plan.tilesIn(qi!);
    if (!fits) throw stray(`tile run ${JSON.stringify(run).slice(0, 80)} is not in its plan`);
    if (isWholeRun(plan, run)) work.whole.push(qi!);
    else {
      const block = plan.block(qi!); // generated here, per run: the plan holds no tiles
      for (let t = from!; t < to!; t++) work.split.push({ qi: qi!, from: from!, tile: block.tiles[t]! });
      work.runs.push({ qi: qi!, from: from!, tiles: to! - from!, of: block.tiles.length });
    }
    work.tileCount += to! - from!;
  }
  return work;
}

/**
 * What is left of a tile job after a previous attempt: whole q-blocks not marked reduced, runs of
 * tiles of split q-blocks not marked reduced whose partials' blob is not stored. `started`: how often BullMQ has started this job (attemptsStarted,
 * counting this start, stalls and declines included); on its first start no attempt can have
 * done anything (its q-blocks and tiles belong to this job alone), so nothing is read: a Redis
 * round trip and a store lookup per partial (an S3 HEAD each) saved per tile job.
 */
export async function remainingWork(
  redis: Redis,
  ctx: JobContext,
  work: TileWork,
  started: number,
): Promise<{ blocks: { qi: number; block: QBlockPlan }[]; tiles: SplitTile[] }> {
  const id = ctx.manifest.id;
  if (started <= 1) return { blocks: work.whole.map((qi) => ({ qi, block: ctx.plan.block(qi) })), tiles: work.split };
  // Split q-blocks count too: the tile job that stored a q-block's last partials merged and marked it.
  const qis = [...work.whole, ...new Set(work.runs.map((r) => r.qi))];
  const runs = splitRuns(work.split);
  const [reduced, stored] = await Promise.all([
    qis.length > 0 ? redis.smismember(jobKeys.reduced(id), ...qis.map(String)) : [],
    ctx.store.existsMany(runs.map((run) => blobNames.partial(id, run[0]!.qi, run[0]!.tile.kBlock))),
  ]);
  const merged = new Set(qis.filter((_, i) => reduced[i] === 1));
  return {
    blocks: work.whole.filter((qi) => !merged.has(qi)).map((qi) => ({ qi, block: ctx.plan.block(qi) })),
    tiles: runs.filter((run, i) => !stored[i] && !merged.has(run[0]!.qi)).flat(),
  };
}

/**
 * After a tile job's writes and its record (`state`: the job's state as recordDone found it,
 * '' when gone): when its job was cancelled, failed or removed meanwhile, the worker deletes the
 * job's blobs itself (cancel deleted them before these late writes landed), so a cancel leaves
 * nothing once in-flight tiles have stopped.
 */
export async function cleanUpAfterEnd(ctx: JobContext, state: string): Promise<boolean> {
  if (state === 'queued' || state === 'done') return false;
  await ctx.store.deletePrefix(`${ctx.manifest.id}/`);
  return true;
}
