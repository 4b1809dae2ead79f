import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  ARRIVING_HEADER_CAP,
  arrivingHeaderEnd,
  arrivingLayout,
  elementCount,
  firstNonFiniteF32,
  InputError,
  ITEM_SIZE,
  type TensorFormat,
  type TensorLayout,
} from '@longattn/tensor';
import type { UploadedInput } from '../queue/queue-engine.ts';
import { headerSniffer } from './sniff.ts';

/** Most header bytes an uploaded part may have (kept in memory until parsed); real ones are well under 1 MiB. */
const HEADER_CAP = 16 << 20;
/** Data bytes gathered per blob write (busboy hands ~64 KiB chunks). */
const WRITE_BYTES = 1 << 20;

/** One tensor part of an upload, and where its bytes go. */
export interface TensorPartTarget {
  /** The part's field, `q`, `k` or `v` (errors name it). */
  field: string;
  /** The .safetensors tensor the job names (else the file's only one). */
  tensor: string | undefined;
  /**
   * Whether float32 data may go straight into `blob` in file order: known bhsd layout (options
   * came first). Otherwise the part goes to a file in `dir()` for the engine to convert.
   */
  direct: boolean;
  allowNonfinite: boolean;
  /** Writes data bytes at a byte offset of the job's input blob. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** The per-upload temp dir (made on first use). */
  dir(): Promise<string>;
  /** Counts bytes against the cap (throws past it). */
  count(n: number): void;
  /** The error for a part the multipart parser cut at its size limit. */
  overCap(): Error;
}

/**
 * Receives one tensor part as it streams in: its first bytes are sniffed (sniff.ts: the API's
 * words for a wrong format, dtype or tensor name) and its header is parsed with the same codecs as
 * files, all before the rest is read. A
 * float32 part with a known bhsd layout has its data bytes written straight into the job's input
 * blob at their final offsets, WRITE_BYTES at a time, its values checked finite on the way; any
 * other part (f16/bf16/f64, bshd, options not seen yet) is written to a temp file as it came.
 * Memory stays bounded by the header and one write buffer.
 */
export async function receiveTensorPart(stream: Readable, target: TensorPartTarget): Promise<UploadedInput> {
  const { field } = target;
  const label = `the ${field} part`;
  const sniffer = headerSniffer(field, target.tensor);
  /** The codec's layout, its messages naming the part as ours do (`q: the q part: truncated data…`). */
  const parse = (head: Buffer, size: number, format: TensorFormat): TensorLayout => {
    try {
      return arrivingLayout({ path: label, head, size }, format, target.tensor, field);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      throw new InputError(field, error.message.slice(field.length + 2).replace(JSON.stringify(label), label));
    }
  };
  let chunks: Buffer[] = [];
  let held = 0;
  let received = 0;
  let layout: TensorLayout | undefined;
  let format: TensorFormat | undefined;
  let sink: DirectSink | FileSink | undefined;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      target.count(chunk.length);
      received += chunk.length;
      if (sink) {
        await sink.push(chunk);
        continue;
      }
      sniffer.feed(chunk);
      chunks.push(chunk);
      held += chunk.length;
      const head = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, held);
      chunks = [head];
      const end = arrivingHeaderEnd(head);
      if (!end) continue;
      format = end.format;
      if (end.end > ARRIVING_HEADER_CAP[format]) parse(head, Number.POSITIVE_INFINITY, format);
      if (end.end > HEADER_CAP)
        throw new InputError(field, `${label}: header of ${end.end} bytes exceeds the ${HEADER_CAP}-byte cap on an upload's`);
      if (held < end.end) continue;
      layout = parse(head, Number.POSITIVE_INFINITY, format);
      sink = target.direct && layout.dtype === 'f32' ? new DirectSink(target, layout) : await FileSink.open(target, format);
      chunks = [];
      await sink.push(head);
    }
  } catch (error) {
    await sink?.abort();
    throw error;
  }
  if ((stream as { truncated?: boolean }).truncated) {
    await sink?.abort();
    throw target.overCap();
  }
  if (!sink || !layout || !format) {
    // Ended inside its header: the codec says what is missing (or the part was empty).
    if (format && held > 0) parse(chunks[0]!, held, format);
    throw new InputError(field, 'empty or truncated part; expected an .npy or .safetensors tensor');
  }
  const need = elementCount(layout.shape) * ITEM_SIZE[layout.dtype];
  const have = received - layout.dataOffset;
  // The codecs' data-length checks, now that the size is known (a .safetensors file may hold more after it).
  if (have < need || (format === 'npy' && have !== need)) {
    await sink.abort();
    const what = `shape (${layout.shape.join(', ')}) of ${layout.dtype} needs ${need} data bytes, the part has ${have}`;
    throw new InputError(field, `${label}: ${have < need ? 'truncated data' : 'size mismatch'}: ${what}`);
  }
  return sink.finish(layout);
}

/**
 * Data bytes straight into the job's input blob, at offset (file position − data start): two
 * buffers, so one is being written while the other fills (the socket and the disk overlap).
 */
class DirectSink {
  private buffer = Buffer.allocUnsafe(WRITE_BYTES);
  private spare = Buffer.allocUnsafe(WRITE_BYTES);
  /** The write of the spare buffer, while it is in flight. */
  private writing: Promise<void> | undefined;
  private fill = 0;
  /** Data bytes handed to the blob so far (the buffer's offset in the blob). */
  private written = 0;
  /** File bytes seen so far. */
  private position = 0;
  private readonly dataEnd: number;

  constructor(
    private readonly target: TensorPartTarget,
    private readonly layout: TensorLayout,
  ) {
    this.dataEnd = layout.dataOffset + elementCount(layout.shape) * 4;
  }

  async push(chunk: Buffer): Promise<void> {
    const from = Math.max(this.layout.dataOffset, this.position);
    const to = Math.min(this.dataEnd, this.position + chunk.length);
    for (let at = from; at < to; ) {
      const n = Math.min(to - at, WRITE_BYTES - this.fill);
      chunk.copy(this.buffer, this.fill, at - this.position, at - this.position + n);
      this.fill += n;
      at += n;
      if (this.fill === WRITE_BYTES) await this.flush();
    }
    this.position += chunk.length;
  }

  /** Checks the buffered values, then starts their write (a whole number of float32s but at the very end) and swaps buffers. */
  private async flush(): Promise<void> {
    const whole = this.fill - (this.fill % 4);
    if (!this.target.allowNonfinite && whole > 0) {
      const at = firstNonFiniteF32(new Uint32Array(this.buffer.buffer, this.buffer.byteOffset, whole / 4));
      if (at >= 0) {
        throw new InputError(
          this.target.field,
          `non-finite value at flat index ${this.written / 4 + at} of the ${this.target.field} part (set options.allowNonfinite to let NaN/Inf through)`,
        );
      }
    }
    await this.writing; // the spare is free again
    const data = this.buffer.subarray(0, this.fill);
    this.writing = this.target.write(this.written, data);
    this.writing.catch(() => {}); // awaited at the next flush, finish or abort
    [this.buffer, this.spare] = [this.spare, this.buffer];
    this.written += this.fill;
    this.fill = 0;
  }

  async finish(layout: TensorLayout): Promise<UploadedInput> {
    if (this.fill > 0) await this.flush();
    await this.writing;
    return { shape: layout.shape };
  }

  /** Lets a write in flight end (its bytes go with the job's blobs). */
  async abort(): Promise<void> {
    await this.writing?.catch(() => {});
  }
}

/** The part as it came, into `DIR/FIELD.npy|safetensors`, for the engine to validate and convert. */
class FileSink {
  private constructor(
    private readonly file: WriteStream,
    private readonly ref: string,
  ) {}

  static async open(target: TensorPartTarget, format: TensorFormat): Promise<FileSink> {
    const path = join(await target.dir(), `${target.field}.${format}`);
    const file = createWriteStream(path);
    return new FileSink(file, format === 'safetensors' && target.tensor ? `${path}#${target.tensor}` : path);
  }

  async push(chunk: Buffer): Promise<void> {
    if (!this.file.write(chunk)) await new Promise<void>((resolve, reject) => this.file.once('drain', resolve).once('error', reject));
  }

  async finish(): Promise<UploadedInput> {
    this.file.end();
    await finished(this.file);
    return { ref: this.ref };
  }

  async abort(): Promise<void> {
    this.file.destroy();
  }
}

/**
 * Receives a part of a layer job to a file of the upload's temp dir, for the engine to validate
 * with the layer's other inputs (openLayerInputs): `x` and `x-kv` as tensor parts (sniffed and
 * parsed as they arrive, like q, k, v), `weights` as the .safetensors file it is (many tensors;
 * their names and shapes are checked against each other later). Returns the file's ref.
 */
export async function receiveLayerPart(
  stream: Readable,
  field: string,
  tensor: string | undefined,
  target: Pick<TensorPartTarget, 'dir' | 'count' | 'overCap' | 'allowNonfinite'>,
): Promise<string> {
  if (field !== 'weights') {
    const input = await receiveTensorPart(stream, {
      ...target,
      field,
      tensor,
      direct: false,
      write: () => Promise.reject(new Error('a layer part is never written to a blob as it arrives')),
    });
    return (input as { ref: string }).ref;
  }
  const path = join(await target.dir(), 'weights.safetensors');
  const file = createWriteStream(path);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      target.count(chunk.length);
      if (!file.write(chunk)) await new Promise<void>((resolve, reject) => file.once('drain', resolve).once('error', reject));
    }
    if ((stream as { truncated?: boolean }).truncated) throw target.overCap();
    file.end();
    await finished(file);
  } catch (error) {
    file.destroy();
    throw error;
  }
  return path;
}
