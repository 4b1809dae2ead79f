import { getBackend, type KernelOptions, type TileJob, type TileKernel } from '@longattn/kernels';
import { move } from 'piscina';
import { packResult } from '../local/task.ts';

/** What a worker sends a kernel thread: one tile, its q/k/v blocks (shared memory, not copied). */
export interface TileTask {
  backend: string;
  kernelOptions: KernelOptions;
  job: TileJob;
}

const kernels = new Map<string, Promise<TileKernel>>();

function kernelFor(task: TileTask): Promise<TileKernel> {
  const key = `${task.backend}|${JSON.stringify(task.kernelOptions)}`;
  let kernel = kernels.get(key);
  if (!kernel) {
    kernel = getBackend(task.backend).create(task.kernelOptions);
    kernels.set(key, kernel);
  }
  return kernel;
}

/** Runs one tile off the worker's event loop; replies with [o (rows·D), lse (rows)] float32, transferred. */
export default async function runTile(task: TileTask): Promise<unknown> {
  const partial = await (await kernelFor(task)).run(task.job);
  return move(packResult(partial.o, partial.lse));
}
