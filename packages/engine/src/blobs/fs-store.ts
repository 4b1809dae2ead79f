import { constants } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { checkBlobName, type BlobHeader, type BlobStore } from './blob-store.ts';

/**
 * Blobs as files under a directory (local disk, or a shared volume mounted at the same path on
 * every machine): `root/name` holds the data, `root/name.header.json` the header, written last
 * and renamed into place so a sealed blob is always whole. Positional writes and reads.
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

  async write(name: string, offset: number, data: Uint8Array): Promise<void> {
    const path = this.path(name);
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
    const path = `${this.path(name)}.header.json`;
    const tmp = this.tmp(path);
    await this.mkdirFor(path);
    await writeFile(tmp, JSON.stringify(header));
    await rename(tmp, path);
  }

  async putMany(blobs: readonly { name: string; data: Uint8Array; meta?: Record<string, unknown> }[]): Promise<void> {
    await Promise.all(
      blobs.map(async ({ name, data, meta }) => {
        const path = this.path(name);
        const tmp = this.tmp(path);
        await this.mkdirFor(path);
        await writeFile(tmp, data);
        await rename(tmp, path);
        await this.seal(name, { size: data.byteLength, ...(meta ? { meta } : {}) });
      }),
    );
  }

  async header(name: string): Promise<BlobHeader | null> {
    try {
      return JSON.parse(await readFile(`${this.path(name)}.header.json`, 'utf8')) as BlobHeader;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async existsMany(names: readonly string[]): Promise<boolean[]> {
    return Promise.all(names.map((name) => stat(`${this.path(name)}.header.json`).then(() => true, () => false)));
  }

  async read(name: string, offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(name, offset, out);
    return out;
  }

  async readInto(name: string, offset: number, out: Uint8Array): Promise<void> {
    const length = out.byteLength;
    const file = await open(this.path(name), 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null; // nothing written yet: zeros, as in every store
      throw error;
    });
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

  async getMany(names: readonly string[], sizes?: readonly number[]): Promise<(Uint8Array | null)[]> {
    return Promise.all(
      names.map(async (name) => {
        if (!sizes) {
          const header = await this.header(name);
          return header ? this.read(name, 0, header.size) : null;
        }
        // putMany renames whole files into place: a data file that exists is complete.
        return readFile(this.path(name)).catch((error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return null;
          throw error;
        });
      }),
    );
  }

  async delete(names: readonly string[], _sizes?: readonly number[]): Promise<void> {
    await Promise.all(names.map(async (name) => {
      const path = this.path(name);
      await rm(`${path}.header.json`, { force: true });
      await rm(path, { force: true });
    }));
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
