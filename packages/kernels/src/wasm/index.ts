import { registerBackend } from '../registry.ts';
import { wasmBackend } from './wasm-kernel.ts';

export { wasmBackend, WasmTileKernel } from './wasm-kernel.ts';

registerBackend(wasmBackend);
