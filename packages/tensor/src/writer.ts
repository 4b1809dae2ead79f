/** createTensorWriter: a float32 output tensor written by positional runs, committed atomically. */
import { checkShape, elementCount } from './dtype.ts';
import { GATHER_GAP_MAX, SCRATCH_MAX, getScratch } from './decode.ts';
import { bytesOf } from './file.ts';
import { npyHeader } from './npy.ts';
import { PendingFile } from './pending-file.ts';
import { outputFormat } from './ref.ts';
import { safetensorsHeader } from './safetensors.ts';

export interface TensorWriter {
  readonly path: string;
  readonly shape: readonly number[];
  /** Writes data as runs of `width` elements: run r at element first + r*stride. Positional writes. */
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
    const bytes = bytesOf(data);
    if (count === 1 || stride === width) {
      this.file.write(bytes, 0, bytes.length, this.dataOffset + first * 4);
      return;
    }
    const runsPerLoad = Math.floor((SCRATCH_MAX / 4 - width) / stride) + 1;
    if (stride > width && (stride - width) * 4 <= GATHER_GAP_MAX && runsPerLoad >= 2) {
      // read-modify-write whole spans: safe because only this writer's thread touches its temp file
      for (let r0 = 0; r0 < count; r0 += runsPerLoad) {
        const n = Math.min(runsPerLoad, count - r0);
        const spanBytes = ((n - 1) * stride + width) * 4;
        const position = this.dataOffset + (first + r0 * stride) * 4;
        const s = getScratch(spanBytes);
        this.file.read(s.bytes, 0, spanBytes, position);
        for (let r = 0; r < n; r++) {
          const from = (r0 + r) * width;
          s.f32.set(data.subarray(from, from + width), r * stride);
        }
        this.file.write(s.bytes, 0, spanBytes, position);
      }
      return;
    }
    for (let r = 0; r < count; r++) {
      this.file.write(bytes, r * width * 4, width * 4, this.dataOffset + (first + r * stride) * 4);
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
 * Creates a float32 output tensor file: `.npy`, or `.safetensors` (tensor name `name`, default
 * 'out'). Data goes to a temporary sibling file `<path>.pending-<pid>-<rand>` preallocated to full
 * size; commit() fsyncs and renames it into place; abort() deletes it. Throws
 * InputError('--out' or the given argument) when the directory does not exist.
 */
export function createTensorWriter(
  path: string,
  shape: readonly number[],
  options: { name?: string; argument?: string } = {},
): TensorWriter {
  const argument = options.argument ?? '--out';
  const format = outputFormat(path, argument);
  checkShape(shape, 4);
  const header =
    format === 'npy' ? npyHeader(shape, 'f32') : safetensorsHeader([{ name: options.name ?? 'out', dtype: 'f32', shape }]).bytes;
  const file = new PendingFile(path, header.length + elementCount(shape) * 4, argument);
  try {
    file.write(header, 0, header.length, 0);
  } catch (err) {
    file.abort();
    throw err;
  }
  return new FileTensorWriter(path, shape, file, header.length);
}
