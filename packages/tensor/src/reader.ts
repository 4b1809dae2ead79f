/** openTensor: positional, bounded-memory reads of one tensor in an .npy or .safetensors file. */
import fs from 'node:fs';
import { InputError } from './errors.ts';
import { ITEM_SIZE, elementCount } from './dtype.ts';
import type { DType } from './dtype.ts';
import { GATHER_GAP_MAX, SCRATCH_MAX, decode, firstNonFinite, getScratch } from './decode.ts';
import { bytesOf, openInput, readFully } from './file.ts';
import type { InputFile } from './file.ts';
import { readNpyHeader } from './npy.ts';
import type { TensorLayout } from './npy.ts';
import { parseRef } from './ref.ts';
import { readSafetensorsIndex, safetensorsLayout } from './safetensors.ts';
import type { SafetensorsHeader } from './safetensors.ts';

export interface TensorReader {
  readonly ref: string;
  readonly argument: string;
  /** The file (the ref without `#name`). */
  readonly path: string;
  /** Where the tensor lies in its file: hand it to openTensorAt (e.g. in another thread) to skip the header. */
  readonly layout: TensorLayout;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly length: number;
  /**
   * Reads `count` runs of `width` elements, the first run at element `first`, successive runs
   * `stride` elements apart, converted to float32 into `into` (or a new array of count*width).
   * Positional reads only: never loads the whole file; coalesces into one read when stride === width.
   */
  readRuns(first: number, count: number, stride: number, width: number, into?: Float32Array): Float32Array;
  /** The whole tensor as float32. */
  readAll(): Float32Array;
  /** Element index of the first NaN/±Inf (as float32), or -1. Streams the file in chunks ≤ 8 MB. */
  findNonFinite(): number;
  close(): void;
}

function checkCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`readRuns: ${name} must be a non-negative integer, got ${value}`);
}

class FileTensorReader implements TensorReader {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly length: number;
  readonly path: string;
  private readonly itemSize: number;
  private readonly dataOffset: number;
  private fd: number | undefined;

  constructor(
    readonly ref: string,
    readonly argument: string,
    private readonly file: InputFile,
    readonly layout: TensorLayout,
  ) {
    this.path = file.path;
    this.dtype = layout.dtype;
    this.shape = Object.freeze([...layout.shape]);
    this.length = elementCount(layout.shape);
    this.itemSize = ITEM_SIZE[layout.dtype];
    this.dataOffset = layout.dataOffset;
    this.fd = file.fd;
  }

  readRuns(first: number, count: number, stride: number, width: number, into?: Float32Array): Float32Array {
    checkCount('first', first);
    checkCount('count', count);
    checkCount('stride', stride);
    checkCount('width', width);
    const total = count * width;
    const out = into ?? new Float32Array(total);
    if (out.length < total) throw new RangeError(`readRuns: into holds ${out.length} elements, ${total} needed`);
    if (total === 0) return out;
    const end = first + (count - 1) * stride + width;
    if (end > this.length) throw new RangeError(`readRuns: runs reach element ${end}, the tensor has ${this.length}`);
    if (count === 1 || stride === width) {
      this.readRange(first, total, out, 0);
      return out;
    }
    const item = this.itemSize;
    const runsPerLoad = width * item > SCRATCH_MAX ? 0 : stride === 0 ? count : Math.floor((SCRATCH_MAX / item - width) / stride) + 1;
    if ((stride - width) * item > GATHER_GAP_MAX || runsPerLoad < 2) {
      for (let r = 0; r < count; r++) this.readRange(first + r * stride, width, out, r * width);
      return out;
    }
    for (let r0 = 0; r0 < count; r0 += runsPerLoad) {
      const n = Math.min(runsPerLoad, count - r0);
      const span = (n - 1) * stride + width;
      const s = getScratch(span * item);
      this.fill(s.bytes, 0, span * item, first + r0 * stride);
      for (let r = 0; r < n; r++) decode(s, this.dtype, r * stride, out, (r0 + r) * width, width);
    }
    return out;
  }

  readAll(): Float32Array {
    return this.readRuns(0, 1, this.length, this.length);
  }

  findNonFinite(): number {
    const perChunk = SCRATCH_MAX / this.itemSize;
    for (let at = 0; at < this.length; at += perChunk) {
      const n = Math.min(perChunk, this.length - at);
      const s = getScratch(n * this.itemSize);
      this.fill(s.bytes, 0, n * this.itemSize, at);
      const i = firstNonFinite(s, this.dtype, n);
      if (i >= 0) return at + i;
    }
    return -1;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  /** out[dst … dst+n) ← elements [elem, elem+n): f32 straight into `out`, others via scratch chunks. */
  private readRange(elem: number, n: number, out: Float32Array, dst: number): void {
    if (this.dtype === 'f32') {
      this.fill(bytesOf(out), dst * 4, n * 4, elem);
      return;
    }
    const perChunk = SCRATCH_MAX / this.itemSize;
    for (let done = 0; done < n; done += perChunk) {
      const k = Math.min(perChunk, n - done);
      const s = getScratch(k * this.itemSize);
      this.fill(s.bytes, 0, k * this.itemSize, elem + done);
      decode(s, this.dtype, 0, out, dst + done, k);
    }
  }

  /** bytes[offset … offset+length) ← the file from element `elem`. */
  private fill(bytes: Uint8Array, offset: number, length: number, elem: number): void {
    if (this.fd === undefined) throw new Error(`${this.argument}: reader is closed`);
    if (!readFully(this.fd, bytes, offset, length, this.dataOffset + elem * this.itemSize)) {
      throw new InputError(this.argument, `${JSON.stringify(this.file.path)}: file shrank while reading`);
    }
  }
}

/**
 * Opens `file.npy`, or `file.safetensors#name` (name optional when the file holds exactly one
 * tensor). Reads and validates only the header; `argument` names the CLI argument in errors
 * (default: the ref), e.g. '--q'.
 */
export function openTensor(ref: string, argument: string = ref): TensorReader {
  return openTensors([{ ref, argument }])[0]!;
}

/**
 * Opens several tensors, reading and parsing each file's header once however many refs name it
 * (`w.safetensors#q`, `#k`, `#v`). On failure nothing is left open.
 */
export function openTensors(refs: readonly { ref: string; argument: string }[]): TensorReader[] {
  const headers = new Map<string, SafetensorsHeader>();
  const opened: TensorReader[] = [];
  try {
    for (const { ref, argument } of refs) {
      const parsed = parseRef(ref, argument);
      const file = openInput(parsed.path, argument);
      try {
        let layout: TensorLayout;
        if (parsed.format === 'npy') {
          layout = readNpyHeader(file, argument);
        } else {
          let header = headers.get(parsed.path);
          if (header === undefined || header.fileSize !== file.size) {
            header = readSafetensorsIndex(file, argument);
            headers.set(parsed.path, header);
          }
          layout = safetensorsLayout(header, parsed.name, argument);
        }
        opened.push(new FileTensorReader(ref, argument, file, layout));
      } catch (err) {
        fs.closeSync(file.fd);
        throw err;
      }
    }
    return opened;
  } catch (err) {
    for (const r of opened) r.close();
    throw err;
  }
}

/**
 * Opens a tensor whose header was already read (a reader's `layout`, e.g. sent to a pool thread):
 * no header is read or parsed again. The file must still be a regular file long enough for it.
 */
export function openTensorAt(path: string, layout: TensorLayout, argument: string): TensorReader {
  const file = openInput(path, argument);
  const end = layout.dataOffset + elementCount(layout.shape) * ITEM_SIZE[layout.dtype];
  if (file.size < end) {
    fs.closeSync(file.fd);
    throw new InputError(argument, `${JSON.stringify(path)}: file shrank to ${file.size} bytes, the tensor ends at byte ${end}`);
  }
  return new FileTensorReader(path, argument, file, layout);
}

/** Convenience: openTensor + readAll + close. */
export function readTensor(ref: string, argument?: string): { shape: number[]; dtype: DType; data: Float32Array } {
  const reader = openTensor(ref, argument);
  try {
    return { shape: [...reader.shape], dtype: reader.dtype, data: reader.readAll() };
  } finally {
    reader.close();
  }
}

/** The tensor names in a .safetensors file, from its header alone (e.g. to find optional weights). */
export function safetensorsNames(path: string, argument: string): string[] {
  const file = openInput(path, argument);
  try {
    return [...readSafetensorsIndex(file, argument).index.keys.keys()].filter((name) => name !== '__metadata__');
  } finally {
    fs.closeSync(file.fd);
  }
}
