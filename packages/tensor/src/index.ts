/**
 * @longattn/tensor: dtypes (f32, f16, bf16, f64 in; f32, f16, bf16 out), .npy and .safetensors codecs,
 * positional block reads and atomic block writes that never hold a whole file in memory.
 */
export { InputError } from './errors.ts';
export type { DType } from './dtype.ts';
export { ITEM_SIZE, elementCount } from './dtype.ts';
export { openTensor, openTensorAt, openTensors, readTensor, safetensorsNames } from './reader.ts';
export type { TensorLayout } from './npy.ts';
export { parseRef, outputFormat } from './ref.ts';
export { NPY_HEADER_CAP, npyHeader } from './npy.ts';
export { ARRIVING_HEADER_CAP, arrivingHeaderEnd, arrivingLayout, type TensorFormat } from './arriving.ts';
export type { ArrivingFile } from './file.ts';
export { SAFETENSORS_HEADER_CAP } from './safetensors.ts';
export type { TensorReader } from './reader.ts';
export { checkOutDtype, createTensorWriter } from './writer.ts';
export type { OutDType } from './encode.ts';
export type { TensorWriter } from './writer.ts';
export { writeSafetensors, writeTensor } from './write-tensor.ts';
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './half.ts';
export { firstNonFiniteF32 } from './decode.ts';
export { gaussian, mulberry32, uniformF32 } from './random.ts';
