/// <reference types="@webgpu/types" />
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { deviceKind } from '../device.ts';

/** The `webgpu` npm package (Dawn for Node): `create(flags)` returns a navigator.gpu. */
export interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

/** Dawn backends the `webgpu` backend can ask for: `vulkan` (GPUs), `opengl` / `opengles` (through EGL). */
export const DAWN_MODES = ['vulkan', 'opengl', 'opengles'] as const;
export type DawnMode = (typeof DAWN_MODES)[number];

/** An adapter that answered, with the names every report uses. */
export interface DawnAdapter {
  adapter: GPUAdapter;
  mode: DawnMode;
  /** Adapter info joined: `NVIDIA H200 (nvidia, …)`, `llvmpipe-llvm-15-0-6-256-bits- (OpenGL version 4.5 … Mesa 22.3.6)`. */
  renderer: string;
  software: boolean;
  /** `NVIDIA H200 (WebGPU vulkan)`, `llvmpipe-llvm-15-0-6-256-bits- (WebGPU opengl, software)`. */
  device: string;
}

let loaded: Promise<DawnModule | string> | undefined;

/**
 * The `webgpu` package: ours (packages/kernels), else the copy gpu.js depends on. Resolved from this
 * file (in the CLI bundle import.meta.url is still this source's URL). Returns the module or a reason.
 */
export function loadDawn(): Promise<DawnModule | string> {
  loaded ??= (async () => {
    const here = createRequire(import.meta.url);
    let path: string | undefined;
    for (const from of [() => here, () => createRequire(here.resolve('gpu.js'))]) {
      try {
        path = from().resolve('webgpu');
        break;
      } catch {
        // not resolvable from here; try the next place
      }
    }
    if (!path) return 'the webgpu npm package is not installed';
    try {
      const mod = (await import(pathToFileURL(path).href)) as DawnModule;
      for (const [name, value] of Object.entries(mod.globals)) {
        if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
      }
      return mod;
    } catch (e) {
      return `the webgpu npm package does not load here (${(e as Error).message.split('\n')[0]})`;
    }
  })();
  return loaded;
}

const instances = new Map<DawnMode, GPU>();

/**
 * Asks Dawn's `mode` backend for an adapter (compatibility level, which GL needs); GL goes through
 * Mesa's surfaceless EGL platform (no display needed). Returns the adapter or a one-line reason.
 */
export async function openAdapter(mode: DawnMode): Promise<DawnAdapter | string> {
  const dawn = await loadDawn();
  if (typeof dawn === 'string') return dawn;
  // Surfaceless EGL needs no display (with an X display present, EGL on X failed under the gl addon).
  if (mode !== 'vulkan') process.env.EGL_PLATFORM ??= 'surfaceless';
  let gpu = instances.get(mode);
  if (!gpu) {
    gpu = dawn.create([`backend=${mode}`]);
    instances.set(mode, gpu);
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ featureLevel: 'compatibility', powerPreference: 'high-performance' });
  } catch (e) {
    return `WebGPU (${mode}) requestAdapter failed: ${(e as Error).message.split('\n')[0]}`;
  }
  if (!adapter)
    return `WebGPU found no ${mode} adapter${mode === 'vulkan' ? ' (no Vulkan driver, or libvulkan.so.1 missing)' : ' (no EGL/GL)'}`;
  const info = adapter.info;
  const name = info.device || info.description || info.vendor || 'unknown adapter';
  const detail = [info.vendor, info.architecture, info.description].filter((s) => s && s !== name).join(', ');
  const renderer = detail ? `${name} (${detail})` : name;
  const software = deviceKind(renderer) === 'software';
  return { adapter, mode, renderer, software, device: `${name} (WebGPU ${mode}${software ? ', software' : ''})` };
}

/** Drops the Dawn instances (a live one keeps Node from exiting). */
export function closeDawn(): void {
  instances.clear();
}
