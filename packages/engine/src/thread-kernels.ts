import { getBackend, type KernelOptions, type TileKernel } from '@longattn/kernels';

/** This thread's kernels: one per backend and options, created on first use and kept. */
const kernels = new Map<string, Promise<TileKernel>>();

export function threadKernel(backend: string, options: KernelOptions): Promise<TileKernel> {
  const key = `${backend}|${JSON.stringify(options)}`;
  let kernel = kernels.get(key);
  if (!kernel) {
    kernel = getBackend(backend).create(options);
    kernels.set(key, kernel);
  }
  return kernel;
}
