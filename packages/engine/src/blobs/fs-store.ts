import {
  closeSync,
  existsSync,
  constants,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { InputError } from '@longattn/tensor';
import { checkBlobName, type BlobHeader, type BlobStore } from './blob-store.ts';

/**
 * Blobs as files under a directory (local disk, or a shared volume mounted at the same path on
 * every machine). A sealed blob is the file `root/name`, whole: putMany writes a temporary file
 * and renames it into place; positional writes go to `root/name.building`, which seal() renames.
 * A header's meta, when there is one, sits beside it in `root/name.meta.json`, written first.
 *
 * Calls are synchronous under the async interface: a tile's partial is a few small file
 * operations, which cost far less inline than as thread-pool round trips (the reducer handles
 * thousands per job), and page-cache reads of a block take well under a millisecond.
 */
export class FsBlobStore implements BlobStore {
  readonly location: string;
  /** Directories known to exist (saves a mkdir per blob). */
  private readonly dirs = new Set<string>();

  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.location = `fs:${this.root}`;
  }

  /** `root/name`, refused unless it resolves strictly inside the root (names are checked too; this is the last word). */
  private path(name: string): string {
    checkBlobName(name);
    const path = resolve(this.root, name);
    if (!path.startsWith(this.root + sep)) throw new RangeError(`blob name ${JSON.stringify(name)} leaves the store's root ${this.root}`);
    return path;
  }

  private mkdirFor(path: string): void {
    const dir = dirname(path);
    if (this.dirs.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    this.dirs.add(dir);
  }

  private tmp(path: string): string {
    return `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  }

  /** Writes a whole file atomically: a temporary sibling renamed into place. */
  private writeWhole(path: string, data: Uint8Array | string): void {
    this.mkdirFor(path);
    const tmp = this.tmp(path);
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  }

  async write(name: string, offset: number, data: Uint8Array): Promise<void> {
    const path = `${this.path(name)}.building`;
    this.mkdirFor(path);
    if (data.byteLength >= ASYNC_WRITE_BYTES) return writeAsync(path, offset, data);
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT);
    try {
      for (let done = 0; done < data.byteLength; ) done += writeSync(fd, data, done, data.byteLength - done, offset + done);
    } finally {
      closeSync(fd);
    }
  }

  async seal(name: string, header: BlobHeader): Promise<void> {
    const path = this.path(name);
    if (header.meta) this.writeWhole(`${path}.meta.json`, JSON.stringify(header.meta));
    this.mkdirFor(path);
    // Sealed already (a finalise retried after its seal): starting over from an empty .building
    // file would replace the result with zeros.
    if (!existsSync(`${path}.building`) && statSync(path, { throwIfNoEntry: false })?.size === header.size) return;
    const fd = openSync(`${path}.building`, constants.O_RDWR | constants.O_CREAT);
    try {
      ftruncateSync(fd, header.size); // unwritten tails read as zeros, as in every store
    } finally {
      closeSync(fd);
    }
    renameSync(`${path}.building`, path);
  }

  async putMany(blobs: readonly { name: string; data: Uint8Array; meta?: Record<string, unknown> }[]): Promise<void> {
    for (const { name, data, meta } of blobs) {
      const path = this.path(name);
      if (meta) this.writeWhole(`${path}.meta.json`, JSON.stringify(meta));
      this.writeWhole(path, data);
    }
  }

  async header(name: string): Promise<BlobHeader | null> {
    const path = this.path(name);
    const size = statSync(path, { throwIfNoEntry: false })?.size;
    if (size === undefined) return null;
    const meta = ifExists(() => JSON.parse(readFileSync(`${path}.meta.json`, 'utf8')) as Record<string, unknown>);
    return { size, ...(meta ? { meta } : {}) };
  }

  async existsMany(names: readonly string[]): Promise<boolean[]> {
    return names.map((name) => statSync(this.path(name), { throwIfNoEntry: false }) !== undefined);
  }

  async read(name: string, offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(name, offset, out);
    return out;
  }

  async readInto(name: string, offset: number, out: Uint8Array): Promise<void> {
    const reader = this.openReader(name);
    try {
      reader.readInto(offset, out);
    } finally {
      reader.close();
    }
  }

  /**
   * A synchronous positional reader of one blob, for many reads without reopening it (kernel
   * threads read a tile's blocks straight from the page cache into reused buffers, as the local
   * engine does). Reads as readInto does: sealed or still being built, zeros where nothing is.
   */
  openReader(name: string): { readInto(offset: number, out: Uint8Array): void; close(): void } {
    const path = this.path(name);
    const fd = ifExists(() => openSync(path, 'r')) ?? ifExists(() => openSync(`${path}.building`, 'r'));
    return {
      readInto(offset, out) {
        let done = 0;
        while (fd !== undefined && done < out.byteLength) {
          const n = readSync(fd, out, done, out.byteLength - done, offset + done);
          if (n === 0) break; // past the end
          done += n;
        }
        out.fill(0, done);
      },
      close() {
        if (fd !== undefined) closeSync(fd);
      },
    };
  }

  async getMany(names: readonly string[]): Promise<(Uint8Array | null)[]> {
    return names.map((name) => ifExists(() => readFileSync(this.path(name))) ?? null);
  }

  /** With `sizes` (blobs put whole, without meta, e.g. partials) only the data files go. */
  async delete(names: readonly string[], sizes?: readonly number[]): Promise<void> {
    for (const name of names) {
      const path = this.path(name);
      rmSync(path, { force: true });
      if (sizes) continue;
      rmSync(`${path}.meta.json`, { force: true });
      rmSync(`${path}.building`, { force: true });
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    checkBlobName(prefix);
    this.dirs.clear();
    const path = this.path(prefix);
    if (prefix.endsWith('/')) return rmSync(path, { recursive: true, force: true });
    const dir = dirname(path);
    const base = path.slice(dir.length + 1);
    const entries = ifExists(() => readdirSync(dir)) ?? [];
    for (const e of entries.filter((e) => e.startsWith(base))) rmSync(join(dir, e), { recursive: true, force: true });
  }

  async topNames(): Promise<string[]> {
    return (ifExists(() => readdirSync(this.root)) ?? []).filter((name) => !name.includes('.tmp-'));
  }

  async ready(): Promise<void> {
    try {
      mkdirSync(this.root, { recursive: true });
      if (!statSync(this.root).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      throw new InputError('--blobs', `cannot keep blobs in ${this.location}: ${code ?? message}`);
    }
  }

  async close(): Promise<void> {}
}

/**
 * Writes at least this big go through the thread pool: a streamed upload (the api's, 1 MiB at a
 * time) then reads the socket while the previous chunk is written. Smaller ones (a q-block's
 * output rows) stay inline, as the class comment says.
 */
const ASYNC_WRITE_BYTES = 512 << 10;

async function writeAsync(path: string, offset: number, data: Uint8Array): Promise<void> {
  const file = await open(path, constants.O_RDWR | constants.O_CREAT);
  try {
    for (let done = 0; done < data.byteLength; ) {
      done += (await file.write(data, done, data.byteLength - done, offset + done)).bytesWritten;
    }
  } finally {
    await file.close();
  }
}

/** The value, or undefined when the file is not there (ENOENT). */
function ifExists<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
