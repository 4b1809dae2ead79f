import { registerBackend } from '../registry.ts';
import { gpujsBackend } from './backend.ts';

/**
 * The `gpujs` backend (registered on import: kernels/index.ts re-exports this module) and
 * detectGpu, which tells auto-selection whether GL reaches real GPU hardware.
 */
registerBackend(gpujsBackend);

export { gpujsBackend } from './backend.ts';
export { detectGpu, type GpuInfo } from './detect.ts';
export { GPUJS_MODES, type GpujsMode } from './modes.ts';
