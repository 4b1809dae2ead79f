/** Float values → little-endian bytes of a dtype: the writing side of decode.ts. */
import type { DType } from './dtype.ts';
import { bytesOf } from './file.ts';
import { f32ToBf16, f32ToF16 } from './half.ts';

/** Element types an output may be written in (`--out-dtype`); LSE is always f32. */
export type OutDType = 'f32' | 'f16' | 'bf16';

/** Little-endian bytes of `data` as `dtype` (f16/bf16 round to nearest, ties to even, from float32). */
export function encode(data: Float32Array | Float64Array, dtype: DType): Uint8Array {
  switch (dtype) {
    case 'f32':
      return bytesOf(data instanceof Float32Array ? data : Float32Array.from(data));
    case 'f64':
      return bytesOf(data instanceof Float64Array ? data : Float64Array.from(data));
    case 'f16':
    case 'bf16': {
      const to = dtype === 'f16' ? f32ToF16 : f32ToBf16;
      const out = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = to(data[i]!);
      return bytesOf(out);
    }
  }
}
