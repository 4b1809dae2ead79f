import { InputError } from '@longattn/attention';
import { glDeviceName, glInfo, rendererInfo } from './detect.ts';
import { destroyGl, openGl, type GlContext } from './gl-addon.ts';
import { probeGl } from './gl-probe.ts';
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

/**
 * null when `mode` can run here, else a one-line reason. Loads neither gpu.js nor the gl addon
 * in this thread (gpu.js loads gl on import, and gl serves one thread per process): GL is probed
 * in a child process, so the thread that later calls create() can still take it.
 */
export async function probeMode(mode: GpujsMode): Promise<string | null> {
  if (mode === 'cpu') return null;
  if (mode === 'webasm')
    return typeof (globalThis as { WebAssembly?: unknown }).WebAssembly === 'object' ? null : 'this runtime has no WebAssembly';
  if (mode === 'webgpu') {
    const reason = await installWebGpu();
    uninstallWebGpu(); // a live Dawn instance would keep Node from exiting; create() installs it again
    return reason;
  }
  const probe = probeGl();
  if ('error' in probe) return probe.error;
  if (!probe.floatTextures) return 'the GL context has no float textures (OES_texture_float), which precision single needs';
  return null;
}

/** What runs a mode's kernels: `Mesa llvmpipe (GL, software)`, `NVIDIA H200 (GL)`, `cpu (gpu.js webasm)`. */
export async function modeDevice(mode: GpujsMode): Promise<string> {
  if (mode === 'webasm' || mode === 'cpu') return `cpu (gpu.js ${mode})`;
  if (mode === 'webgpu') return `${webGpuAdapterName()} (WebGPU)`;
  const probe = probeGl();
  return 'error' in probe ? 'no GL context' : glDeviceName(rendererInfo(probe.renderer));
}

/** gpu.js's own GL test context (the one its headlessgl kernels' renderer is read from). */
function gpujsGlContext(gpujs: GpuJs): GlContext | null {
  return gpujs.HeadlessGLKernel.testContext ?? null;
}

/**
 * A gpu.js instance for `mode` in this thread, with the device it really runs on and the largest
 * texture side it can write (Infinity off GL). headlessgl binds the gl addon to this thread; webgpu
 * puts navigator.gpu on globalThis first.
 */
export async function createGpu(mode: GpujsMode): Promise<{ gpu: Gpu; device: string; maxSide: number }> {
  if (mode === 'webgpu') {
    const reason = await installWebGpu();
    if (reason) throw new Error(`gpujs:webgpu cannot run here: ${reason}`);
  }
  if (mode === 'headlessgl') {
    const opened = openGl(); // the precise reason (e.g. another thread holds the addon) that gpu.js swallows
    if ('error' in opened) throw new Error(`gpujs:headlessgl cannot run in this thread: ${opened.error}`);
    destroyGl(opened.context);
  }
  const gpujs = await loadGpuJs();
  const gpu = new gpujs.GPU({ mode });
  if (mode !== 'headlessgl') return { gpu, device: await modeDevice(mode), maxSide: Infinity };
  const context = gpujs.GPU.isHeadlessGLSupported ? gpujsGlContext(gpujs) : null;
  const features = gpujs.HeadlessGLKernel.features;
  if (!context || !features?.isTextureFloat || !features.isFloatRead) {
    throw new Error('gpujs:headlessgl cannot run in this thread: gpu.js could not open a GL context with float textures');
  }
  const tex = Number(context.getParameter(context.MAX_TEXTURE_SIZE));
  const rb = Number(context.getParameter(context.MAX_RENDERBUFFER_SIZE));
  return { gpu, device: glDeviceName(glInfo(context)), maxSide: Math.min(tex || 4096, rb || tex || 4096) };
}
