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

/**
 * Disposes this thread's kernels (their onnxruntime sessions and arenas) before the thread ends
 * while its process goes on: a session left to thread teardown is never released, and its memory
 * stays in the process (inspect's first pass, then the statistics pass's own pool).
 */
export async function disposeThreadKernels(): Promise<void> {
  const made = [...kernels.values()];
  kernels.clear();
  for (const k of made) await (await k.catch(() => undefined))?.dispose?.();
}
