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
    // Warm-up: hold this thread a moment so each of the pool's warm-up tasks lands on its own thread.
    await new Promise((resolve) => setTimeout(resolve, 50));
    return null;
  }
  const source = taskSource(task.spec, task.inputs);
  const results = [];
  for (const block of task.blocks) results.push(await computeQBlock(kernel, task.spec, block, source));
  return move(packResults(results));
}
