import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

interface WebGpuModule {
  create(flags: string[]): { requestAdapter(): Promise<unknown> };
  globals: Record<string, unknown>;
}

/**
 * Resolves the `webgpu` npm package (Dawn for Node): ours first, else the copy gpu.js depends on
 * (0.2.9, which needs a newer libstdc++ than Debian 12's). Returns the module or a reason.
 */
async function loadWebGpu(): Promise<WebGpuModule | string> {
  const here = createRequire(import.meta.url);
  let path: string | undefined;
  for (const from of [here, createRequire(here.resolve('gpu.js'))]) {
    try {
      path = from.resolve('webgpu');
      break;
    } catch {
      // not resolvable from here; try the next place
    }
  }
  if (!path) return 'the webgpu npm package is not installed';
  try {
    return (await import(pathToFileURL(path).href)) as WebGpuModule;
  } catch (e) {
    return `the webgpu npm package does not load here (${(e as Error).message.split('\n')[0]})`;
  }
}

let adapterName = 'WebGPU adapter';

/** The adapter installWebGpu last found, e.g. `NVIDIA H200, nvidia`. */
export function webGpuAdapterName(): string {
  return adapterName;
}

const holder = globalThis as { navigator?: { gpu?: unknown } };

/**
 * Puts `navigator.gpu` (Dawn) on globalThis and checks that an adapter answers (Dawn needs a
 * Vulkan GPU). Returns null when gpu.js's webgpu mode can run, else a one-line reason; on failure
 * the global is removed again (a live Dawn instance keeps Node from exiting).
 */
export async function installWebGpu(): Promise<string | null> {
  const mod = await loadWebGpu();
  if (typeof mod === 'string') return mod;
  for (const [name, value] of Object.entries(mod.globals)) {
    if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  }
  const gpu = mod.create([]);
  let adapter: unknown = null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return `WebGPU requestAdapter failed: ${(e as Error).message.split('\n')[0]}`;
  }
  if (!adapter) return 'WebGPU found no adapter (Dawn needs a Vulkan GPU; software Vulkan is refused)';
  const info = (adapter as { info?: { vendor?: string; device?: string; description?: string } }).info;
  adapterName = [info?.description || info?.device, info?.vendor].filter(Boolean).join(', ') || 'WebGPU adapter';
  if (!holder.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  holder.navigator!.gpu = gpu;
  return null;
}

/** Removes what installWebGpu put on globalThis.navigator so Node can exit. */
export function uninstallWebGpu(): void {
  if (holder.navigator) delete holder.navigator.gpu;
}
