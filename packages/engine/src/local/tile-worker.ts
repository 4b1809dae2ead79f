import { getBackend, type TileKernel } from '@longattn/kernels';
import { move } from 'piscina';
import { computeQBlock, warmKernel } from '../compute-block.ts';
import { taskSource } from './task-source.ts';
import { packResult, type LocalTask } from './task.ts';

/** One kernel per backend (and options) per thread, created on first use and kept. */
const kernels = new Map<string, Promise<TileKernel>>();

function kernelFor(task: LocalTask): Promise<TileKernel> {
  const key = `${task.backend}|${JSON.stringify(task.kernelOptions)}`;
  let kernel = kernels.get(key);
  if (!kernel) {
    kernel = getBackend(task.backend).create(task.kernelOptions);
    kernels.set(key, kernel);
  }
  return kernel;
}

/** Computes one q-block in this pool thread; replies with the packed (o, lse), transferred. */
export default async function runTask(task: LocalTask): Promise<unknown> {
  const kernel = await kernelFor(task);
  if (!task.block) {
    await warmKernel(kernel, task.spec);
    // Warm-up: hold this thread a moment so each of the pool's warm-up tasks lands on its own thread.
    await new Promise((resolve) => setTimeout(resolve, 50));
    return null;
  }
  const partial = await computeQBlock(kernel, task.spec, task.block, taskSource(task.spec, task.inputs));
  return move(packResult(partial.o, partial.lse));
}
