/**
 * A file that appears at its path only when committed: data goes to a temporary sibling
 * `<path>.pending-<pid>-<rand>`; commit() fsyncs and renames it into place; abort() deletes it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from './errors.ts';
import { fsReason, readFully, writeFully } from './file.ts';

export class PendingFile {
  readonly tempPath: string;
  private fd: number | undefined;
  private state: 'open' | 'committed' | 'aborted' = 'open';

  /** Creates the temporary file, `size` bytes long; a missing directory → InputError(argument). */
  constructor(
    readonly path: string,
    size: number,
    argument: string,
  ) {
    const dir = pathDir(path);
    let isDir = false;
    try {
      isDir = fs.statSync(dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new InputError(argument, `directory ${JSON.stringify(dir)} does not exist`);
    try {
      if (fs.statSync(path).isDirectory()) throw new InputError(argument, `${JSON.stringify(path)} is a directory`);
    } catch (err) {
      if (err instanceof InputError) throw err;
    }
    this.tempPath = `${path}.pending-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      this.fd = fs.openSync(this.tempPath, 'wx+');
    } catch (err) {
      throw new InputError(argument, `cannot write ${JSON.stringify(path)}: ${fsReason(err)}`);
    }
    try {
      fs.ftruncateSync(this.fd, size);
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** Writes bytes[offset … offset+length) at file `position`. */
  write(bytes: Uint8Array, offset: number, length: number, position: number): void {
    if (this.fd === undefined) throw new Error(`${this.path}: already ${this.state}`);
    writeFully(this.fd, bytes, offset, length, position);
  }

  /** Reads bytes[offset … offset+length) back from file `position` (zeros where never written). */
  read(bytes: Uint8Array, offset: number, length: number, position: number): void {
    if (this.fd === undefined) throw new Error(`${this.path}: already ${this.state}`);
    if (!readFully(this.fd, bytes, offset, length, position)) throw new Error(`${this.tempPath}: shrank while writing`);
  }

  /** fsync, close, rename into place (replacing any old file), fsync the directory. */
  commit(): void {
    if (this.fd === undefined) throw new Error(`${this.path}: already ${this.state}`);
    try {
      fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
      this.fd = undefined;
      fs.renameSync(this.tempPath, this.path);
    } catch (err) {
      this.abort();
      throw err;
    }
    this.state = 'committed';
    syncDir(pathDir(this.path));
  }

  /** Deletes the temporary file; harmless after commit or a previous abort. */
  abort(): void {
    if (this.state === 'committed') return;
    this.state = 'aborted';
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed: nothing to release
      }
      this.fd = undefined;
    }
    fs.rmSync(this.tempPath, { force: true });
  }
}

function pathDir(p: string): string {
  return path.dirname(path.resolve(p));
}

/** Makes a rename durable; best effort (some file systems refuse fsync on a directory). */
function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // durability of the rename is best effort
  }
}
