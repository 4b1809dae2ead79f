/** createTensorWriter: an output tensor (f32, f16 or bf16) written by positional runs, committed atomically. */
import { ITEM_SIZE, checkShape, elementCount } from './dtype.ts';
import { GATHER_GAP_MAX, SCRATCH_MAX, getScratch } from './decode.ts';
import { encode, type OutDType } from './encode.ts';
import { InputError } from './errors.ts';
import { npyHeader } from './npy.ts';
import { PendingFile } from './pending-file.ts';
import { outputFormat } from './ref.ts';
import { safetensorsHeader } from './safetensors.ts';

export interface TensorWriter {
  readonly path: string;
  readonly shape: readonly number[];
  /** Writes data as runs of `width` elements: run r at element first + r*stride (converted to the file's dtype). */
  writeRuns(first: number, data: Float32Array, stride: number, width: number): void;
  /** fsync and rename into place. */
  commit(): void;
  /** Delete the temporary file; nothing is left behind. */
  abort(): void;
}

class FileTensorWriter implements TensorWriter {
  readonly shape: readonly number[];
  private readonly length: number;

  constructor(
    readonly path: string,
    shape: readonly number[],
    private readonly file: PendingFile,
    private readonly dataOffset: number,
    private readonly dtype: OutDType,
  ) {
    this.shape = Object.freeze([...shape]);
    this.length = elementCount(shape);
  }

  writeRuns(first: number, data: Float32Array, stride: number, width: number): void {
    for (const [name, v] of [
      ['first', first],
      ['stride', stride],
      ['width', width],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`writeRuns: ${name} must be a non-negative integer, got ${v}`);
    }
    if (data.length === 0) return;
    if (width === 0 || data.length % width !== 0) {
      throw new RangeError(`writeRuns: data length ${data.length} is not a multiple of width ${width}`);
    }
    const count = data.length / width;
    const end = first + (count - 1) * stride + width;
    if (end > this.length) throw new RangeError(`writeRuns: runs reach element ${end}, the tensor has ${this.length}`);
    const bytes = encode(data, this.dtype);
    const size = ITEM_SIZE[this.dtype];
    if (count === 1 || stride === width) {
      this.file.write(bytes, 0, bytes.length, this.dataOffset + first * size);
      return;
    }
    const runsPerLoad = Math.floor((SCRATCH_MAX / size - width) / stride) + 1;
    if (stride > width && (stride - width) * size <= GATHER_GAP_MAX && runsPerLoad >= 2) {
      // read-modify-write whole spans: safe because only this writer's thread touches its temp file
      for (let r0 = 0; r0 < count; r0 += runsPerLoad) {
        const n = Math.min(runsPerLoad, count - r0);
        const spanBytes = ((n - 1) * stride + width) * size;
        const position = this.dataOffset + (first + r0 * stride) * size;
        const s = getScratch(spanBytes);
        this.file.read(s.bytes, 0, spanBytes, position);
        for (let r = 0; r < n; r++) {
          const from = (r0 + r) * width * size;
          s.bytes.set(bytes.subarray(from, from + width * size), r * stride * size);
        }
        this.file.write(s.bytes, 0, spanBytes, position);
      }
      return;
    }
    for (let r = 0; r < count; r++) {
      this.file.write(bytes, r * width * size, width * size, this.dataOffset + (first + r * stride) * size);
    }
  }

  commit(): void {
    this.file.commit();
  }

  abort(): void {
    this.file.abort();
  }
}

/**
 * `--out-dtype` against the output's format: .npy has no bfloat16, so `bf16` with a `.npy` path is
 * an InputError naming `argument` (default `--out-dtype`). Call it at the boundary, before any work.
 */
export function checkOutDtype(path: string, dtype: OutDType, argument = '--out-dtype', pathArgument = '--out'): void {
  if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'bf16') throw new InputError(argument, `expected f32, f16 or bf16, got "${dtype}"`);
  if (dtype === 'bf16' && outputFormat(path, pathArgument) === 'npy') {
    throw new InputError(argument, `.npy has no bfloat16 (numpy cannot load it): write ${pathArgument} as .safetensors, or use f16 or f32`);
  }
}

/**
 * Creates an output tensor file of `dtype` (default f32; f16 and bf16 round to nearest, ties to
 * even): `.npy`, or `.safetensors` (tensor name `name`, default 'out'). Data goes to a temporary sibling file `<path>.pending-<pid>-<rand>` preallocated to full
 * size; commit() fsyncs and renames it into place; abort() deletes it. Throws
 * InputError('--out' or the given argument) when the directory does not exist.
 */
export function createTensorWriter(
  path: string,
  shape: readonly number[],
  options: { name?: string; argument?: string; dtype?: OutDType } = {},
): TensorWriter {
  const argument = options.argument ?? '--out';
  const dtype = options.dtype ?? 'f32';
  const format = outputFormat(path, argument);
  checkOutDtype(path, dtype, '--out-dtype', argument);
  checkShape(shape, ITEM_SIZE[dtype]);
  const header =
    format === 'npy' ? npyHeader(shape, dtype as 'f32' | 'f16') : safetensorsHeader([{ name: options.name ?? 'out', dtype, shape }]).bytes;
  const file = new PendingFile(path, header.length + elementCount(shape) * ITEM_SIZE[dtype], argument);
  try {
    file.write(header, 0, header.length, 0);
  } catch (err) {
    file.abort();
    throw err;
  }
  return new FileTensorWriter(path, shape, file, header.length, dtype);
}
