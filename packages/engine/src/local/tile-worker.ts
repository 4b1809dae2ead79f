import { move } from 'piscina';
import { computeQBlock, warmKernel } from '../compute-block.ts';
import { taskSource } from './task-source.ts';
import { packResults, type LocalTask } from './task.ts';
import { threadKernel } from '../thread-kernels.ts';

/** Computes the task's q-blocks in this pool thread; replies with their packed (o, lse), transferred. */
export default async function runTask(task: LocalTask): Promise<unknown> {
  const kernel = await threadKernel(task.backend, task.kernelOptions);
  if (task.blocks.length === 0) {
    await warmKernel(kernel, task.spec, task.warm ?? { blockQ: 1, blockK: 1 });
    if (task.warm?.barrier) awaitOthers(new Int32Array(task.warm.barrier), task.warm.threads ?? 1);
    return null;
  }
  const source = taskSource(task.spec, task.inputs);
  const results = [];
  for (const block of task.blocks) results.push(await computeQBlock(kernel, task.spec, block, source));
  return move(packResults(results));
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
