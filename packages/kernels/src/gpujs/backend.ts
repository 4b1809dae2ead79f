import type { Backend, KernelOptions, TileKernel } from '../tile.ts';
import { detectGpu, glDeviceName, gpuDeviceNodes } from './detect.ts';
import { GpujsTileKernel } from './gpujs-kernel.ts';
import { loadGpuJs } from './lib.ts';
import { createGpu, expectedKernel, modeDevice, probeMode, resolveMode } from './modes.ts';
import { uninstallWebGpu } from './webgpu.ts';

/**
 * `--backend gpujs[:MODE]`: tiles as five gpu.js kernels (scores+mask, row max, exp, row sum,
 * P·V), precision single. Modes: headlessgl (gl addon + an X display; on Mesa llvmpipe it is
 * software), webgpu (a loadable `webgpu` package and a Vulkan GPU), webasm, cpu. Default:
 * headlessgl when it works here, else webasm. Auto-selection takes it only on real GPU hardware.
 * probe/describe/probeHardware touch GL only in a child process; create() binds the gl addon to
 * the calling thread, and the addon serves one thread per process: run its tiles in one thread.
 */
export const gpujsBackend: Backend = {
  name: 'gpujs',
  summary: 'gpu.js kernels (GL on a GPU via headless-gl; webasm / cpu modes; any head dim)',
  defaultBlocks: { blockQ: 256, blockK: 4096 },
  testedModes: ['headlessgl', 'webasm'],
  accelerated: true,
  threading: 'main', // the gl addon cannot load in worker threads ("Module did not self-register")

  /**
   * Real GPU hardware behind headlessgl (never a software rasteriser), probed in a child process —
   * unless a Linux host has no GPU device node at all, which settles it without one.
   */
  async probeHardware() {
    if (process.platform === 'linux' && gpuDeviceNodes().length === 0) return null;
    const info = await detectGpu();
    if (!info || info.software) return null;
    if ((await probeMode('headlessgl')) !== null) return null;
    return { options: { mode: 'headlessgl' }, device: glDeviceName(info) };
  },

  async probe(options: KernelOptions = {}) {
    return probeMode(await resolveMode(options.mode));
  },

  async describe(options: KernelOptions = {}) {
    return modeDevice(await resolveMode(options.mode));
  },

  async create(options: KernelOptions = {}): Promise<TileKernel> {
    const mode = await resolveMode(options.mode);
    const reason = await probeMode(mode);
    if (reason) throw new Error(`gpujs:${mode} cannot run here: ${reason}`);
    const { gpu, device, maxSide } = await createGpu(mode);
    return new GpujsTileKernel({
      gpu,
      backend: `gpujs:${mode}`,
      device,
      expected: expectedKernel(await loadGpuJs(), mode),
      maxSide,
      // gpu.js threads only webasm, and only under its async contract.
      threads: mode === 'webasm' ? Math.max(1, options.threads ?? 1) : 1,
      ...(mode === 'webgpu' ? { onDispose: uninstallWebGpu } : {}),
    });
  },
};
