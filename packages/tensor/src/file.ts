import fs from 'node:fs';
import { InputError } from './errors.ts';

/** An input file opened for positional reads. */
export interface InputFile {
  readonly path: string;
  readonly fd: number;
  readonly size: number;
}

/**
 * The first bytes of a tensor file still arriving (an upload): its header parses from them as
 * from a file. `size` is Infinity until the whole file is there, so checks of the data's length
 * wait for the caller (it counts the bytes as they arrive).
 */
export interface ArrivingFile {
  readonly path: string;
  readonly head: Uint8Array;
  readonly size: number;
}

/** Where a header is read from: a file opened for positional reads, or the first bytes of one arriving. */
export type HeaderSource = InputFile | ArrivingFile;

/** readFully on a file, or a copy out of an arriving file's first bytes; false past what is there. */
export function readHeaderBytes(file: HeaderSource, into: Uint8Array, offset: number, length: number, position: number): boolean {
  if ('fd' in file) return readFully(file.fd, into, offset, length, position);
  if (position + length > file.head.length) return false;
  into.set(file.head.subarray(position, position + length), offset);
  return true;
}

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  ENOTDIR: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
};

/** Why a file system call failed, in a few words (`no such file`). */
export function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && REASONS[code] !== undefined) return REASONS[code];
  return code ?? String(err);
}

/**
 * Opens `path` read-only; errors → InputError `argument: cannot read "path": <reason>`. Anything
 * but a regular file (a FIFO, a socket, a device) is refused before it is opened: opening a FIFO
 * blocks until a writer appears, and reading a device never ends. The open itself is
 * non-blocking, so a file swapped for a FIFO after the check cannot hang it either.
 */
export function openInput(path: string, argument: string): InputFile {
  const cannot = (reason: string): never => {
    throw new InputError(argument, `cannot read ${JSON.stringify(path)}: ${reason}`);
  };
  try {
    const stat = fs.statSync(path);
    if (!stat.isFile()) cannot(stat.isDirectory() ? 'is a directory' : `not a regular file (${fileKind(stat)})`);
  } catch (err) {
    if (err instanceof InputError) throw err;
    cannot(fsReason(err));
  }
  let fd = -1;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    cannot(fsReason(err));
  }
  const stat = fs.fstatSync(fd);
  if (!stat.isFile()) {
    fs.closeSync(fd);
    cannot(stat.isDirectory() ? 'is a directory' : `not a regular file (${fileKind(stat)})`);
  }
  return { path, fd, size: stat.size };
}

/** What a non-regular file is, in a word, for messages. */
function fileKind(stat: fs.Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a file';
}

/** Reads exactly `length` bytes at file `position` into `into[offset…]`; false on end of file. */
export function readFully(fd: number, into: Uint8Array, offset: number, length: number, position: number): boolean {
  while (length > 0) {
    const n = fs.readSync(fd, into, offset, Math.min(length, 0x40000000), position);
    if (n === 0) return false;
    offset += n;
    length -= n;
    position += n;
  }
  return true;
}

/** Writes exactly `length` bytes of `from[offset…]` at file `position`. */
export function writeFully(fd: number, from: Uint8Array, offset: number, length: number, position: number): void {
  while (length > 0) {
    const n = fs.writeSync(fd, from, offset, Math.min(length, 0x40000000), position);
    offset += n;
    length -= n;
    position += n;
  }
}

/** A byte view over a typed array's own memory (no copy). */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
