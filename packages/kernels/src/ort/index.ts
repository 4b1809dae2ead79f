import { registerBackend } from '../registry.ts';
import { ortBackend } from './ort-kernel.ts';

/**
 * The `ort` backend (registered on import: kernels/index.ts re-exports this module) and the
 * pieces peers reuse: the ONNX encoder and a session wrapper, so onnxruntime-node stays a
 * dependency of @longattn/kernels alone.
 */
registerBackend(ortBackend);

export { ortBackend, OrtTileKernel } from './ort-kernel.ts';
export { OrtGraph, ortModuleUrl, unshared } from './runtime.ts';
export type { Feed } from './runtime.ts';
export { encodeModel, float } from '../onnx/model.ts';
export type { Attr, OnnxGraph, OnnxModel, OnnxNode, OnnxTensor, OnnxValue } from '../onnx/model.ts';
