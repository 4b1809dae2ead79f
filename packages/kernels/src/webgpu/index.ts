import { registerBackend } from '../registry.ts';
import { webgpuBackend } from './backend.ts';

/** The `webgpu` backend (WGSL on Dawn), registered on import: kernels/index.ts re-exports this module. */
registerBackend(webgpuBackend);

export { webgpuBackend } from './backend.ts';
export { DAWN_MODES, openAdapter, type DawnAdapter, type DawnMode } from './dawn.ts';
