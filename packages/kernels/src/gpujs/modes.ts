import { InputError } from '@longattn/attention';
import { glDeviceName, glInfo } from './detect.ts';
import { destroyGl, openGl, type GlContext } from './gl-addon.ts';
import { loadGpuJs, type Gpu, type GpuJs, type KernelClass } from './lib.ts';
import { installWebGpu, uninstallWebGpu, webGpuAdapterName } from './webgpu.ts';

export const GPUJS_MODES = ['headlessgl', 'webgpu', 'webasm', 'cpu'] as const;
export type GpujsMode = (typeof GPUJS_MODES)[number];

/** The kernel class a mode must run on: anything else is gpu.js's silent cpu fallback. */
export function expectedKernel(gpujs: GpuJs, mode: GpujsMode): KernelClass {
  if (mode === 'headlessgl') return gpujs.HeadlessGLKernel;
  if (mode === 'webgpu') return gpujs.WebGPUKernel;
  if (mode === 'webasm') return gpujs.WebAssemblyKernel;
  return gpujs.CPUKernel;
}

/** Validates a `--backend gpujs:MODE` mode. */
export function parseMode(mode: string): GpujsMode {
  if ((GPUJS_MODES as readonly string[]).includes(mode)) return mode as GpujsMode;
  throw new InputError('--backend', `gpujs mode must be one of ${GPUJS_MODES.join(', ')}; got "${mode}"`);
}

/** The mode to use: the one asked for, else headlessgl when it works here, else webasm. */
export async function resolveMode(mode: string | undefined): Promise<GpujsMode> {
  if (mode !== undefined) return parseMode(mode);
  return (await probeMode('headlessgl')) === null ? 'headlessgl' : 'webasm';
}

/** gpu.js's own GL test context (the renderer its headlessgl kernels really use). */
function gpujsGlContext(gpujs: GpuJs): GlContext | null {
  return gpujs.HeadlessGLKernel.testContext ?? null;
}

/** null when `mode` can run here, else a one-line reason. */
export async function probeMode(mode: GpujsMode): Promise<string | null> {
  if (mode === 'cpu') return null;
  if (mode === 'webgpu') {
    const reason = await installWebGpu();
    uninstallWebGpu(); // a live Dawn instance would keep Node from exiting; create() installs it again
    return reason;
  }
  if (mode === 'headlessgl') {
    const opened = openGl(); // gives the precise reason (no addon, no DISPLAY) that gpu.js swallows
    if ('error' in opened) return opened.error;
    destroyGl(opened.context);
  }
  const gpujs = await loadGpuJs();
  if (mode === 'webasm') return gpujs.GPU.isWebAssemblySupported ? null : 'gpu.js reports no WebAssembly support';
  if (!gpujs.GPU.isHeadlessGLSupported || !gpujsGlContext(gpujs)) return 'gpu.js could not open a headless GL context';
  const features = gpujs.HeadlessGLKernel.features;
  if (!features?.isTextureFloat || !features.isFloatRead) return 'the GL context has no float textures (OES_texture_float), which precision single needs';
  return null;
}

/** What runs a mode's kernels: `Mesa llvmpipe (GL, software)`, `NVIDIA H200 (GL)`, `cpu (gpu.js webasm)`. */
export async function modeDevice(mode: GpujsMode): Promise<string> {
  if (mode === 'webasm' || mode === 'cpu') return `cpu (gpu.js ${mode})`;
  if (mode === 'webgpu') return `${webGpuAdapterName()} (WebGPU)`;
  const gpujs = await loadGpuJs();
  const context = gpujs.GPU.isHeadlessGLSupported ? gpujsGlContext(gpujs) : null;
  return context ? glDeviceName(glInfo(context)) : 'no GL context';
}

/** Largest texture side a mode can write (GL: MAX_TEXTURE_SIZE and renderbuffer size); Infinity off GL. */
export async function maxTextureSide(mode: GpujsMode): Promise<number> {
  if (mode !== 'headlessgl') return Infinity;
  const context = gpujsGlContext(await loadGpuJs());
  if (!context) return 4096; // WebGL 1's minimum guarantee is 64; every desktop stack has ≥ 4096
  const tex = Number(context.getParameter(context.MAX_TEXTURE_SIZE));
  const rb = Number(context.getParameter(context.MAX_RENDERBUFFER_SIZE));
  return Math.min(tex || 4096, rb || tex || 4096);
}

/** A gpu.js instance for `mode`; webgpu puts navigator.gpu on globalThis first. */
export async function createGpu(mode: GpujsMode): Promise<Gpu> {
  if (mode === 'webgpu') {
    const reason = await installWebGpu();
    if (reason) throw new Error(`gpujs:webgpu cannot run here: ${reason}`);
  }
  const gpujs = await loadGpuJs();
  return new gpujs.GPU({ mode });
}
