/**
 * Headers of tensor files still arriving (an upload's parts): the same .npy and .safetensors codecs
 * as for files on disk, run on the first bytes once the header is all there, so a part can be
 * checked and its data placed before the rest of it arrives.
 */
import type { ArrivingFile } from './file.ts';
import { readNpyHeader, NPY_HEADER_CAP, type TensorLayout } from './npy.ts';
import { readSafetensorsHeader, SAFETENSORS_HEADER_CAP } from './safetensors.ts';

export type TensorFormat = 'npy' | 'safetensors';

const NPY_MAGIC = Buffer.from('\x93NUMPY', 'latin1');

/**
 * Where an arriving file's header ends (its first data byte or, for .safetensors, the start of the
 * data section), once the first bytes say: undefined until then. The format is told by the magic:
 * `\x93NUMPY` is .npy, anything else is read as .safetensors (whose codec then says what is wrong).
 */
export function arrivingHeaderEnd(head: Uint8Array): { format: TensorFormat; end: number } | undefined {
  if (head.length < NPY_MAGIC.length) return undefined;
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (bytes.subarray(0, NPY_MAGIC.length).equals(NPY_MAGIC)) {
    if (bytes.length < 12) return undefined;
    const major = bytes[6]!;
    const start = major === 1 ? 10 : 12;
    return { format: 'npy', end: start + (major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8)) };
  }
  if (bytes.length < 8) return undefined;
  const length = bytes.readBigUInt64LE(0);
  return { format: 'safetensors', end: length > BigInt(SAFETENSORS_HEADER_CAP) ? Number.MAX_SAFE_INTEGER : 8 + Number(length) };
}

/** Largest header a codec accepts, in bytes from the file's start. */
export const ARRIVING_HEADER_CAP: Readonly<Record<TensorFormat, number>> = {
  npy: 12 + NPY_HEADER_CAP,
  safetensors: 8 + SAFETENSORS_HEADER_CAP,
};

/**
 * The tensor's layout from an arriving file's first bytes (`file.size` Infinity while more is to
 * come, the final size once it ended); `name` picks a .safetensors tensor (.npy holds one). Throws InputError(argument) as the file codecs do; the
 * data's length is the caller's to check as it arrives (it is past what `file.head` holds).
 */
export function arrivingLayout(file: ArrivingFile, format: TensorFormat, name: string | undefined, argument: string): TensorLayout {
  return format === 'npy' ? readNpyHeader(file, argument) : readSafetensorsHeader(file, name, argument);
}
