import { InputError } from '@longattn/attention';
import { gpuDeviceNodes } from '../gpujs/detect.ts';
import type { Backend, KernelOptions, TileKernel } from '../tile.ts';
import { DAWN_MODES, openAdapter, type DawnAdapter, type DawnMode } from './dawn.ts';
import { WebGpuTileKernel } from './webgpu-kernel.ts';

/** Validates a `--backend webgpu:MODE` mode. */
function parseDawnMode(mode: string): DawnMode {
  if ((DAWN_MODES as readonly string[]).includes(mode)) return mode as DawnMode;
  throw new InputError('--backend', `webgpu mode must be one of ${DAWN_MODES.join(', ')}; got "${mode}"`);
}

/** The adapter for `mode`, or without one the first of vulkan, opengl, opengles that answers (a reason when none does). */
async function adapterFor(mode: string | undefined): Promise<DawnAdapter | string> {
  if (mode !== undefined) return openAdapter(parseDawnMode(mode));
  const reasons: string[] = [];
  for (const m of DAWN_MODES) {
    const a = await openAdapter(m);
    if (typeof a !== 'string') return a;
    reasons.push(a);
  }
  return reasons.join('; ');
}

/**
 * `--backend webgpu[:vulkan|opengl|opengles]`: our own WGSL tile kernel (shader.ts: compute
 * shaders, workgroup-tiled scores, online softmax and P·V, split keys merged in order) on Dawn
 * (the `webgpu` npm package). Auto-selection takes it only when a hardware adapter answers,
 * never a software one (lavapipe, llvmpipe through EGL, SwiftShader): see device.ts.
 */
export const webgpuBackend: Backend = {
  name: 'webgpu',
  summary: 'WGSL compute-shader tiles on Dawn (Vulkan or GL/EGL; D ≤ 256)',
  // The largest tiles the default LONGATTN_MAX_TILE_AREA (2^22 rows×keys) allows; raise both for big GPUs.
  defaultBlocks: { blockQ: 1024, blockK: 4096 },
  testedModes: ['opengl'],
  accelerated: true,
  threading: 'main', // one Dawn device per process; the GPU does the parallel work

  /** A hardware adapter of Dawn's; a Linux host with no GPU device node settles it without loading Dawn. */
  async probeHardware() {
    if (process.platform === 'linux' && gpuDeviceNodes().length === 0) return null;
    for (const mode of DAWN_MODES) {
      const a = await openAdapter(mode);
      if (typeof a !== 'string' && !a.software) return { options: { mode }, device: a.device };
    }
    return null;
  },

  async probe(options: KernelOptions = {}) {
    const a = await adapterFor(options.mode);
    return typeof a === 'string' ? a : null;
  },

  async describe(options: KernelOptions = {}) {
    const a = await adapterFor(options.mode);
    return typeof a === 'string' ? 'no WebGPU adapter' : a.device;
  },

  async create(options: KernelOptions = {}): Promise<TileKernel> {
    const a = await adapterFor(options.mode);
    if (typeof a === 'string') throw new Error(`webgpu cannot run here: ${a}`);
    return WebGpuTileKernel.open(a);
  },
};
