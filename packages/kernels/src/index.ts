import { jsBackend } from './js/js-kernel.ts';
import { registerBackend } from './registry.ts';
import { waitBackend } from './wait/wait-kernel.ts';

export type { BandJob, Backend, KernelOptions, LseTileJob, TileJob, TileKernel } from './tile.ts';
export { rowKeyRange, tileLse, tileLsePartial } from './tile.ts';
export { getBackend, listBackends, parseBackendName, registerBackend } from './registry.ts';
export { CPU_PREFERENCE, onSoftware, refuseSoftware, selectBackend } from './select.ts';
export type { Selection } from './select.ts';
export { jsTile, jsTileLse } from './js/js-kernel.ts';
export { encodeModel, float, OrtGraph, ortBackend, ortModuleUrl, unshared, type Feed, type OnnxModel, type OnnxNode } from './ort/index.ts'; // registers the ort backend
export { wasmBackend } from './wasm/index.ts'; // registers the wasm backend
export { detectGpu, gpujsBackend, GPUJS_MODES, type GpuInfo, type GpujsMode } from './gpujs/index.ts'; // registers the gpujs backend
export { webgpuBackend, DAWN_MODES, openAdapter, type DawnAdapter, type DawnMode } from './webgpu/index.ts'; // registers the webgpu backend
export { deviceKind, isSoftwareRenderer } from './device.ts';
export { TEST_KERNELS_ENV, tileFlops, waitBackend } from './wait/wait-kernel.ts';
export { createLinear, jsLinear, type Linear } from './linear/index.ts';

// Built-in backends (auto-selection order lives in select.ts, not here).
registerBackend(jsBackend);
registerBackend(waitBackend); // test-only: refuses to run unless LONGATTN_TEST_KERNELS includes `wait`
export { jsScoreTiles, scoreTiles, type ScoreTiles } from './score-tiles.ts';
export { ortScoreTiles } from './ort/score-tiles.ts';
