import type { Job } from 'bullmq';
import { DelayedError } from 'bullmq';
import { JobCancelledError, StrayJobError } from '../errors.ts';
import type { JobContext } from './job-context.ts';
import { contextOrDecline } from './job-context.ts';
import { blockFlops, projectRanges, type LayerBlock, type ProjectJobData } from './layer-flow.ts';
import { checkJobId, flowIds, jobKeys } from './names.ts';
import { decline } from './service.ts';
import { runProjectTask, type ProjectTask } from './project-thread.ts';
import { cleanUpAfterEnd } from './tile-job.ts';
import type { WorkerParts } from './worker.ts';
import { runOnThread } from './kernel-pool.ts';

/**
 * KEYS: job hash, projected set. ARGV: worker field, its value, then per block (index, flops).
 * Counts each written block once in the job's progress (flops), only while queued; returns the
 * job's state as it found it ('' when gone).
 */
const RECORD_BLOCKS = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
if state ~= 'queued' then return state end
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
for i = 3, #ARGV, 2 do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    redis.call('HINCRBY', KEYS[1], 'flops', ARGV[i + 1])
  end
end
return state`;

/**
 * A projection job's blocks, checked against its job: a layer job, an id `JOB-jN` with N below
 * its projection-job count, and exactly the range N of its plan. Anything else is a stray.
 */
function checkProjectJob(job: Job<ProjectJobData>, ctx: JobContext): { index: number; block: LayerBlock }[] {
  const { id, layer, spec, blockQ } = ctx.manifest;
  const stray = (why: string) => new StrayJobError(`projection job ${String(job.id).slice(0, 80)} is not part of job ${id}: ${why}`);
  if (!layer) throw stray('it is not a layer job');
  const n = /^(.*)-j(\d+)$/.exec(String(job.id));
  if (!n || n[1] !== id || Number(n[2]) >= layer.inJobs + layer.outJobs || flowIds.project(id, Number(n[2])) !== job.id)
    throw stray('not one of its projection-job ids');
  const { blocks, first, last } = projectRanges(spec, blockQ, layer);
  const range = [...first, ...last][Number(n[2])];
  if (!range || range[0] !== job.data.from || range[1] !== job.data.to)
    throw stray(`blocks [${String(job.data.from).slice(0, 20)}, ${String(job.data.to).slice(0, 20)}) are not its range`);
  return Array.from({ length: range[1] - range[0] }, (_, i) => ({ index: range[0] + i, block: blocks[range[0] + i]! }));
}

/**
 * One projection job of a layer: checked, then the blocks a previous attempt did not record are
 * projected by a kernel thread (the same threads as tiles), recorded once each, and — if the job
 * ended meanwhile — its late blobs deleted. Declined like a tile job when this worker cannot run
 * the job's backend or open its store.
 */
export async function processProjectJob(w: WorkerParts, job: Job<ProjectJobData>, token: string | undefined): Promise<{ blocks: number }> {
  const jobId = checkJobId(job.data?.job, 'job');
  const ctx = await contextOrDecline(w.contexts, w.redis, job, token, w.id);
  const all = checkProjectJob(job, ctx);
  const state = await w.states.get(jobId);
  if (state !== 'queued') throw new JobCancelledError(`job ${jobId} is ${state ?? 'gone'}`);
  const choice = await w.choice.forJob(ctx.manifest.backend);
  if ('declined' in choice) return decline(w.redis, job, token, w.id, choice.declined);
  const done = job.attemptsStarted > 1 ? await w.redis.smismember(jobKeys.projected(jobId), ...all.map(({ index }) => String(index))) : [];
  const left = all.filter((_, i) => done[i] !== 1);
  if (!w.started.has(jobId)) {
    await w.redis.hsetnx(jobKeys.hash(jobId), 'startedAt', String(Date.now()));
    w.started.add(jobId);
  }
  const task: ProjectTask = {
    kind: 'project',
    job: jobId,
    spec: ctx.manifest.spec,
    layer: ctx.manifest.layer!,
    store: ctx.store.location,
    redis: w.options.redis,
    blocks: left,
    throttleMs: w.options.throttleMs ?? 0,
  };
  if (left.length > 0) {
    try {
      await (w.pool ? runOnThread(w.pool, task, w.handBack.signal) : runProjectTask(task, ctx.store));
    } catch (error) {
      if (!w.handBack.signal.aborted) throw error;
      await job.moveToDelayed(Date.now(), token); // shutting down past the grace period: hand it back
      throw new DelayedError();
    }
  }
  const { spec, layer } = ctx.manifest;
  const args = all.flatMap(({ index, block }) => [String(index), String(blockFlops(spec, layer!, block))]);
  const { selection } = choice;
  const recorded = String(
    await w.redis.eval(
      RECORD_BLOCKS,
      2,
      jobKeys.hash(jobId),
      jobKeys.projected(jobId),
      `w:${w.id}`,
      `${selection.name}|${selection.device}`,
      ...args,
    ),
  );
  if (await cleanUpAfterEnd(ctx, recorded))
    throw new JobCancelledError(`job ${jobId} ended while projection job ${job.id} ran; its blobs deleted`);
  return { blocks: left.length };
}
