/**
 * Where a queued job's bytes live: its inputs (float32, bhsd, one blob per tensor), the tiles'
 * partials (one blob per tile) and the outputs. Jobs and queues carry blob names, never bytes.
 *
 * A blob is built with positional writes (several processes may write disjoint ranges) and
 * becomes visible when sealed with its header; put() does both for a whole small blob. Readers
 * fetch byte ranges, so a worker reads a block of rows without the whole tensor.
 */
export interface BlobHeader {
  /** Bytes of data. */
  size: number;
  /** Free-form JSON about the content, e.g. { dtype: 'f32', shape: [B, H, S, D] }. */
  meta?: Record<string, unknown>;
}

export interface BlobStore {
  /** How a job's manifest names this store, so every process opens the same one: `redis`, `redis://…`, `fs:/dir`. */
  readonly location: string;
  /** Bytes per write() an uploader should send, when the store prefers bigger writes than 1 MiB (S3: fewer PUTs). */
  readonly writeBytes?: number;
  /** Writes bytes at a byte offset of a blob (created as needed; unwritten bytes read as 0). */
  write(name: string, offset: number, data: Uint8Array): Promise<void>;
  /** Makes a blob visible to header()/get() with its header. Sealing a sealed blob again keeps its bytes (retried finalises). */
  seal(name: string, header: BlobHeader): Promise<void>;
  /** Writes and seals whole blobs (e.g. a tile job's partials) in one round trip where the store allows. */
  putMany(blobs: readonly { name: string; data: Uint8Array; meta?: Record<string, unknown> }[]): Promise<void>;
  /** The header of a sealed blob, or null. */
  header(name: string): Promise<BlobHeader | null>;
  /** Whether each blob is sealed. */
  existsMany(names: readonly string[]): Promise<boolean[]>;
  /** `length` bytes at `offset` (zeros where nothing was written). */
  read(name: string, offset: number, length: number): Promise<Uint8Array>;
  /** `into.byteLength` bytes at `offset`, copied straight into `into` (e.g. shared memory). */
  readInto(name: string, offset: number, into: Uint8Array): Promise<void>;
  /**
   * Whole blobs written with putMany (null for one that is not there), in one round trip where
   * the store allows. With `sizes` (the known byte size of each) stores may skip reading headers.
   */
  getMany(names: readonly string[], sizes?: readonly number[]): Promise<(Uint8Array | null)[]>;
  /** Deletes blobs (sealed or not); missing ones are fine. `sizes` as in getMany. */
  delete(names: readonly string[], sizes?: readonly number[]): Promise<void>;
  /** Deletes every blob whose name starts with `prefix` (e.g. a job's `jobId/`). */
  deletePrefix(prefix: string): Promise<void>;
  /** The first segments of the names it holds (job ids, for the reducer's sweep of expired jobs). */
  topNames(): Promise<string[]>;
  /** Checks the store can be used now (a creatable directory, a Redis that answers): InputError(`--blobs`) if not. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** Blob names are relative paths of `[A-Za-z0-9._-]` segments: safe as file paths and Redis keys. */
export function checkBlobName(name: string): void {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*\/?$/.test(name)) {
    throw new RangeError(`bad blob name ${JSON.stringify(name)}: expected /-separated segments of [A-Za-z0-9._-]`);
  }
}

/** A byte view of a float32 array (no copy). */
export function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Float32 values of bytes a store returned: a view when 4-byte aligned, else an aligned copy. */
export function bytesToF32(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`float32 data of ${bytes.byteLength} bytes`);
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(Uint8Array.from(bytes).buffer);
}
