import test from 'ava';
import { listBackends, type Backend, type TileKernel } from '@longattn/kernels';

/** One backend in one of the modes CI must cover, with its kernel made once, on first use. */
export interface KernelTarget {
  backend: Backend;
  /** `name` or `name:mode`. */
  label: string;
  /** Probes, then creates the kernel once; a backend that cannot run here fails (never skips). */
  kernel(): Promise<TileKernel>;
}

/**
 * Every registered backend `only` accepts, in each of its tested modes; the kernels made are
 * disposed after the file's tests. Dawn (webgpu) and the gl addon (gpujs headlessgl) cannot share
 * a process (Dawn's EGL finds no adapter once the addon holds a GLX context), so webgpu runs in
 * its own test file: test/conformance/webgpu.test.ts.
 */
export function kernelTargets(only: (backend: string) => boolean): KernelTarget[] {
  const kernels = new Map<string, Promise<TileKernel>>();
  test.after.always(async () => {
    for (const k of kernels.values()) await (await k.catch(() => undefined))?.dispose?.();
  });
  return listBackends()
    .filter((backend) => only(backend.name))
    .flatMap((backend) => (backend.testedModes ?? [undefined]).map((mode) => ({ backend, mode })))
    .map(({ backend, mode }) => {
      const label = mode ? `${backend.name}:${mode}` : backend.name;
      const options = mode ? { mode } : {};
      const kernel = () => {
        let k = kernels.get(label);
        if (!k) {
          k = backend.probe(options).then((reason) => {
            if (reason) throw new Error(`${label} cannot run here: ${reason}`);
            return backend.create(options);
          });
          kernels.set(label, k);
        }
        return k;
      };
      return { backend, label, kernel };
    });
}
