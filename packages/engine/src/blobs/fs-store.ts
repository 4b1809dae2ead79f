import { constants } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { checkBlobName, type BlobHeader, type BlobStore } from './blob-store.ts';

/**
 * Blobs as files under a directory (local disk, or a shared volume mounted at the same path on
 * every machine). A sealed blob is the file `root/name`, whole: putMany writes a temporary file
 * and renames it into place; positional writes go to `root/name.building`, which seal() renames.
 * A header's meta, when there is one, sits beside it in `root/name.meta.json`, written first.
 * Few file operations per blob: a tile's partial costs one create, one write and one rename.
 */
export class FsBlobStore implements BlobStore {
  readonly location: string;
  /** Directories known to exist (saves a mkdir per blob). */
  private readonly dirs = new Set<string>();

  constructor(private readonly root: string) {
    this.location = `fs:${root}`;
  }

  private path(name: string): string {
    checkBlobName(name);
    return join(this.root, name);
  }

  private async mkdirFor(path: string): Promise<void> {
    const dir = dirname(path);
    if (this.dirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.dirs.add(dir);
  }

  private tmp(path: string): string {
    return `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  }

  private async writeMeta(path: string, meta: Record<string, unknown> | undefined): Promise<void> {
    if (!meta) return;
    const tmp = this.tmp(`${path}.meta.json`);
    await writeFile(tmp, JSON.stringify(meta));
    await rename(tmp, `${path}.meta.json`);
  }

  async write(name: string, offset: number, data: Uint8Array): Promise<void> {
    const path = `${this.path(name)}.building`;
    await this.mkdirFor(path);
    const file = await open(path, constants.O_RDWR | constants.O_CREAT);
    try {
      for (let done = 0; done < data.byteLength; ) {
        const { bytesWritten } = await file.write(data, done, data.byteLength - done, offset + done);
        done += bytesWritten;
      }
    } finally {
      await file.close();
    }
  }

  async seal(name: string, header: BlobHeader): Promise<void> {
    const path = this.path(name);
    await this.mkdirFor(path);
    await this.writeMeta(path, header.meta);
    const file = await open(`${path}.building`, constants.O_RDWR | constants.O_CREAT);
    try {
      await file.truncate(header.size); // unwritten tails read as zeros, as in every store
    } finally {
      await file.close();
    }
    await rename(`${path}.building`, path);
  }

  async putMany(blobs: readonly { name: string; data: Uint8Array; meta?: Record<string, unknown> }[]): Promise<void> {
    await Promise.all(
      blobs.map(async ({ name, data, meta }) => {
        const path = this.path(name);
        const tmp = this.tmp(path);
        await this.mkdirFor(path);
        await this.writeMeta(path, meta);
        await writeFile(tmp, data);
        await rename(tmp, path);
      }),
    );
  }

  async header(name: string): Promise<BlobHeader | null> {
    const path = this.path(name);
    const size = await stat(path).then((s) => s.size, () => null);
    if (size === null) return null;
    const meta = await readFile(`${path}.meta.json`, 'utf8').then((text) => JSON.parse(text) as Record<string, unknown>, () => undefined);
    return { size, ...(meta ? { meta } : {}) };
  }

  async existsMany(names: readonly string[]): Promise<boolean[]> {
    return Promise.all(names.map((name) => stat(this.path(name)).then(() => true, () => false)));
  }

  async read(name: string, offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(name, offset, out);
    return out;
  }

  async readInto(name: string, offset: number, out: Uint8Array): Promise<void> {
    const path = this.path(name);
    const length = out.byteLength;
    const opened = async (p: string) =>
      open(p, 'r').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return null;
        throw error;
      });
    // Sealed, or still being built (nothing at all: zeros, as in every store).
    const file = (await opened(path)) ?? (await opened(`${path}.building`));
    let done = 0;
    try {
      while (file && done < length) {
        const { bytesRead } = await file.read(out, done, length - done, offset + done);
        if (bytesRead === 0) break; // past the end
        done += bytesRead;
      }
    } finally {
      await file?.close();
    }
    out.fill(0, done);
  }

  async getMany(names: readonly string[]): Promise<(Uint8Array | null)[]> {
    return Promise.all(
      names.map((name) =>
        readFile(this.path(name)).catch((error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return null;
          throw error;
        }),
      ),
    );
  }

  /** With `sizes` (blobs put whole, without meta, e.g. partials) only the data files go. */
  async delete(names: readonly string[], sizes?: readonly number[]): Promise<void> {
    await Promise.all(
      names.map(async (name) => {
        const path = this.path(name);
        await rm(path, { force: true });
        if (sizes) return;
        await rm(`${path}.meta.json`, { force: true });
        await rm(`${path}.building`, { force: true });
      }),
    );
  }

  async deletePrefix(prefix: string): Promise<void> {
    checkBlobName(prefix);
    this.dirs.clear();
    const path = join(this.root, prefix);
    if (prefix.endsWith('/')) return rm(path, { recursive: true, force: true });
    const dir = dirname(path);
    const base = path.slice(dir.length + 1);
    const entries = await readdir(dir).catch(() => [] as string[]);
    await Promise.all(entries.filter((e) => e.startsWith(base)).map((e) => rm(join(dir, e), { recursive: true, force: true })));
  }

  async close(): Promise<void> {}
}
