import { plan, type Plan } from '@longattn/attention';
import { move } from 'piscina';
import { computeQBlock, warmKernel } from '../compute-block.ts';
import { computeLinearQBlock, linearStates, sourceReader } from '../linear-block.ts';
import { packedRuns, packPartials } from '../packed.ts';
import { disposeThreadKernels, threadKernel } from '../thread-kernels.ts';
import { taskSource } from './task-source.ts';
import { fullSpec } from './task-spec.ts';
import { layerSource, runProjectTask, warmProjections } from '../layer/layer-thread.ts';
import type { LocalTask, ProjectTask } from './task.ts';

/** This thread's plan of the current job (lazy: rebuilding it costs O(q-blocks per head)). */
let current: { key: string; plan: Plan } | undefined;

/**
 * The job's plan, kept while tasks bring the same spec and tile size; its spec is the full one
 * (a block mask's cells travel in shared memory, task-spec.ts).
 */
function taskPlan(task: LocalTask): Plan {
  const { spec, key: specKey } = fullSpec(task.spec);
  const key = `${specKey}|${task.blockQ}|${task.blockK}`;
  if (current?.key !== key) current = { key, plan: plan(spec, { blockQ: task.blockQ, blockK: task.blockK }) };
  return current.plan;
}

/**
 * Computes the task's q-blocks in this pool thread; replies with their packed (o, lse), transferred.
 * A layer's projection task replies with its packed projections (layer-thread.ts).
 */
export default async function runTask(task: LocalTask | ProjectTask): Promise<unknown> {
  if ('kind' in task) return move(await runProjectTask(task));
  if (task.release) {
    await disposeThreadKernels();
    awaitOthers(new Int32Array(task.release.barrier), task.release.threads);
    return null;
  }
  const kernel = await threadKernel(task.backend, task.kernelOptions);
  if (task.indices.length === 0) {
    // The plan too: a pattern's plan counts every row block's tiles once (O(Sq · intervals), ~0.2 s
    // at 128K tokens), which each thread otherwise paid inside the timed compute on its first task.
    await warmKernel(kernel, taskPlan(task).spec, task, 3, task.outputs);
    if (task.inputs.kind === 'layer') await warmProjections(task.inputs);
    if (task.warm) awaitOthers(new Int32Array(task.warm.barrier), task.warm.threads);
    return null;
  }
  const thePlan = taskPlan(task);
  const { spec } = thePlan;
  const { inputs } = task;
  const files = inputs.kind === 'layer' ? undefined : taskSource(spec, inputs);
  const results = [];
  const linear = spec.linear ? linearStates(task.run, spec, task.blockK) : undefined;
  // Softmax q-blocks merge straight into the reply (no copy of every row through packPartials).
  const reply = linear
    ? undefined
    : packedRuns(
        task.indices.map((index) => thePlan.locate(index).rows),
        task.outputs === 'lse' ? 0 : spec.D,
        task.reuse,
      );
  for (const [n, index] of task.indices.entries()) {
    const block = thePlan.block(index);
    const source = inputs.kind === 'layer' ? await layerSource(spec, inputs, block) : files!;
    if (linear) results.push(await computeLinearQBlock(spec, block, source, linear, sourceReader(source)));
    else await computeQBlock(kernel, spec, block, source, undefined, reply!.runs[n], task.outputs);
  }
  return move(reply ? reply.packed : packPartials(results));
}

/**
 * The warm-up barrier: counts this thread in, then blocks it (a busy thread gets no other task)
 * until `threads` have arrived, or 5 s at most if a thread never comes.
 */
function awaitOthers(count: Int32Array, threads: number): void {
  Atomics.add(count, 0, 1);
  Atomics.notify(count, 0);
  const deadline = Date.now() + 5000;
  for (let seen = Atomics.load(count, 0); seen < threads && Date.now() < deadline; seen = Atomics.load(count, 0)) {
    Atomics.wait(count, 0, seen, 50);
  }
}
