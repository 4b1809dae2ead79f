/** Whole-tensor writes for tests, the demo and users: any input dtype, committed atomically. */
import { ITEM_SIZE, checkShape, elementCount, formatShape } from './dtype.ts';
import type { DType } from './dtype.ts';
import { encode } from './encode.ts';
import { npyHeader } from './npy.ts';
import { PendingFile } from './pending-file.ts';
import { outputFormat } from './ref.ts';
import { safetensorsHeader } from './safetensors.ts';

function checkData(shape: readonly number[], data: { length: number }, dtype: DType): void {
  checkShape(shape, ITEM_SIZE[dtype]);
  if (data.length !== elementCount(shape)) {
    throw new RangeError(`data has ${data.length} elements, shape ${formatShape(shape)} needs ${elementCount(shape)}`);
  }
}

/** Writes header + parts at their offsets into a fresh file at `path`, atomically. */
function writeWhole(path: string, header: Uint8Array, parts: readonly { at: number; bytes: Uint8Array }[]): void {
  const size = parts.reduce((end, p) => Math.max(end, p.at + p.bytes.length), header.length);
  const file = new PendingFile(path, size, '--out');
  try {
    file.write(header, 0, header.length, 0);
    for (const p of parts) file.write(p.bytes, 0, p.bytes.length, p.at);
    file.commit();
  } catch (err) {
    file.abort();
    throw err;
  }
}

/**
 * Whole-tensor write: float32 .npy/.safetensors by extension, or a given dtype (npy: f32, f64,
 * f16; safetensors: f32, f16, bf16, f64) so that tests and the demo can make other inputs.
 */
export function writeTensor(
  path: string,
  shape: readonly number[],
  data: Float32Array | Float64Array,
  options: { name?: string; dtype?: DType } = {},
): void {
  const dtype = options.dtype ?? 'f32';
  checkData(shape, data, dtype);
  if (outputFormat(path, '--out') === 'safetensors') {
    const { bytes, offsets } = safetensorsHeader([{ name: options.name ?? 'out', dtype, shape }]);
    writeWhole(path, bytes, [{ at: offsets[0]!, bytes: encode(data, dtype) }]);
    return;
  }
  if (dtype === 'bf16') throw new RangeError('.npy has no bfloat16; use .safetensors');
  const header = npyHeader(shape, dtype);
  writeWhole(path, header, [{ at: header.length, bytes: encode(data, dtype) }]);
}

/** Writes a .safetensors file holding several tensors (F32, or F16/BF16 converted from float32). */
export function writeSafetensors(
  path: string,
  tensors: Record<string, { shape: readonly number[]; data: Float32Array; dtype?: 'f32' | 'f16' | 'bf16' }>,
): void {
  const entries = Object.entries(tensors).map(([name, t]) => {
    const dtype = t.dtype ?? 'f32';
    checkData(t.shape, t.data, dtype);
    return { name, dtype, shape: t.shape, data: t.data };
  });
  const { bytes, offsets } = safetensorsHeader(entries);
  writeWhole(
    path,
    bytes,
    entries.map((e, i) => ({ at: offsets[i]!, bytes: encode(e.data, e.dtype) })),
  );
}
