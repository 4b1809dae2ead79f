/**
 * .npy codec (format versions 1.0, 2.0, 3.0): https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 * Layout: `\x93NUMPY`, major, minor, header length (u16 LE for v1, u32 LE for v2/v3), a Python
 * dict literal (latin1; utf8 for v3) padded with spaces and `\n`, then C-order little-endian data.
 */
import { InputError } from './errors.ts';
import { DTYPE_NAME, ITEM_SIZE, elementCount, formatShape } from './dtype.ts';
import type { DType } from './dtype.ts';
import { readHeaderBytes } from './file.ts';
import type { HeaderSource } from './file.ts';
import { parsePyLiteral } from './py-literal.ts';
import type { PyValue } from './py-literal.ts';

/** Where a tensor's data sits in its file. */
export interface TensorLayout {
  readonly dtype: DType;
  readonly shape: number[];
  /** Byte offset of element 0. */
  readonly dataOffset: number;
}

const MAGIC = Buffer.from('\x93NUMPY', 'latin1');
/** Longest header we read: numpy itself refuses headers over 10 000 characters by default. */
export const NPY_HEADER_CAP = 1 << 20;
const KEYS: readonly string[] = ['descr', 'fortran_order', 'shape'];
const DESCR: Readonly<Record<string, DType>> = { f4: 'f32', f2: 'f16', f8: 'f64' };
const ACCEPTED = "'<f4', '<f2' or '<f8' (little-endian float32, float16, float64)";
const NUMPY_DESCR: Readonly<Record<'f32' | 'f16' | 'f64', string>> = { f32: '<f4', f16: '<f2', f64: '<f8' };

/** Short printable excerpt of something found in a file, for one-line messages. */
export function excerpt(value: unknown): string {
  const cut = (text: string): string => (text.length > 60 ? `${text.slice(0, 60)}…` : text);
  if (typeof value === 'string') return JSON.stringify(cut(value));
  return cut(JSON.stringify(value) ?? String(value));
}

/** Reads and validates an .npy header; every malformed case → InputError naming `argument`. */
export function readNpyHeader(file: HeaderSource, argument: string): TensorLayout {
  const where = JSON.stringify(file.path);
  const bad = (detail: string): never => {
    throw new InputError(argument, `${where}: ${detail}`);
  };
  if (file.size === 0) bad('empty file, expected an .npy array');
  const prefix = Buffer.alloc(12);
  const got = Math.min(12, file.size);
  readHeaderBytes(file, prefix, 0, got, 0);
  if (got < MAGIC.length || !prefix.subarray(0, MAGIC.length).equals(MAGIC)) {
    bad(`not an .npy file (bad magic ${excerpt(prefix.subarray(0, Math.min(got, 6)).toString('latin1'))}, expected "\\x93NUMPY")`);
  }
  const major = prefix[6]!;
  const minor = prefix[7]!;
  if (got < 8 || ![1, 2, 3].includes(major) || minor !== 0) {
    bad(`unsupported .npy format version ${got < 8 ? '(truncated)' : `${major}.${minor}`}; expected 1.0, 2.0 or 3.0`);
  }
  const lengthBytes = major === 1 ? 2 : 4;
  const start = 8 + lengthBytes;
  if (got < start) bad(`truncated header (${file.size} bytes)`);
  const headerLength = major === 1 ? prefix.readUInt16LE(8) : prefix.readUInt32LE(8);
  if (headerLength > NPY_HEADER_CAP) bad(`header length ${headerLength} exceeds the ${NPY_HEADER_CAP}-byte cap`);
  if (start + headerLength > file.size) {
    bad(`truncated header: it says ${headerLength} bytes, the file has ${file.size - start} after the prefix`);
  }
  const raw = Buffer.alloc(headerLength);
  readHeaderBytes(file, raw, 0, headerLength, start);
  let text: string;
  try {
    text = major === 3 ? new TextDecoder('utf-8', { fatal: true }).decode(raw) : raw.toString('latin1');
  } catch {
    return bad('header is not valid utf-8');
  }
  let dict: PyValue;
  try {
    dict = parsePyLiteral(text);
  } catch (err) {
    return bad(`header is not a Python dict literal (${(err as Error).message}): ${excerpt(text.trim())}`);
  }
  if (dict === null || typeof dict !== 'object' || Array.isArray(dict)) bad(`header is not a dict: ${excerpt(text.trim())}`);
  const header = dict as { [key: string]: PyValue };
  for (const key of KEYS) {
    if (!Object.hasOwn(header, key)) bad(`header lacks '${key}': ${excerpt(text.trim())}`);
  }
  // numpy's own reader refuses any other key too ("Header does not contain the correct keys").
  const extra = Object.keys(header).find((key) => !KEYS.includes(key));
  if (extra !== undefined) bad(`header has an unexpected key ${excerpt(extra)}; expected only 'descr', 'fortran_order', 'shape'`);

  const { descr, shape: rawShape, fortran_order: fortran } = header;
  if (typeof descr !== 'string') return bad(`dtype ${excerpt(descr)} (structured) is not supported; expected ${ACCEPTED}`);
  const order = /^[<=|]?/.exec(descr)![0];
  const dtype = Object.hasOwn(DESCR, descr.slice(order.length)) ? DESCR[descr.slice(order.length)] : undefined; // not '<toString'
  if (dtype === undefined) {
    const why = descr.startsWith('>') ? ' (big-endian)' : '';
    return bad(`dtype ${excerpt(descr)}${why} is not supported; expected ${ACCEPTED}`);
  }
  if (!Array.isArray(rawShape) || !rawShape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    return bad(`shape ${excerpt(rawShape)} is not a tuple of non-negative integers`);
  }
  const shape = rawShape as number[];
  if (typeof fortran !== 'boolean') bad(`fortran_order ${excerpt(fortran)} is not True or False`);
  if (fortran === true && shape.filter((d) => d !== 1).length > 1) {
    bad(`fortran_order True (column-major) is not supported; save a C-order array (np.ascontiguousarray)`);
  }

  const dataOffset = start + headerLength;
  const need = elementCount(shape) * ITEM_SIZE[dtype];
  const have = file.size - dataOffset;
  // An arriving file's size is not known yet (Infinity): its caller checks the data's length.
  if (Number.isFinite(file.size) && need !== have) {
    const what = `shape ${formatShape(shape)} of ${DTYPE_NAME[dtype]} needs ${need} data bytes, the file has ${have}`;
    bad(have < need ? `truncated data: ${what}` : `size mismatch: ${what}`);
  }
  return { dtype, shape, dataOffset };
}

/** Python's repr of a shape tuple: `()`, `(5,)`, `(3, 4)`. */
function shapeRepr(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/**
 * The header numpy's `np.save` writes for a C-order array of `shape`, byte for byte: version 1.0
 * (2.0 when the header outgrows a u16), room for the first axis to grow to 21 digits, padded with
 * spaces and `\n` so that the data starts at a multiple of 64 bytes.
 */
export function npyHeader(shape: readonly number[], dtype: 'f32' | 'f16' | 'f64'): Buffer {
  let dict = `{'descr': '${NUMPY_DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length > 0) dict += ' '.repeat(Math.max(0, 21 - String(shape[0]).length));
  for (const major of [1, 2]) {
    const lengthBytes = major === 1 ? 2 : 4;
    const withNewline = dict.length + 1;
    const pad = 64 - ((MAGIC.length + 2 + lengthBytes + withNewline) % 64);
    const headerLength = withNewline + pad;
    if (major === 1 && headerLength > 0xffff) continue;
    const out = Buffer.alloc(MAGIC.length + 2 + lengthBytes + headerLength, 0x20);
    MAGIC.copy(out, 0);
    out[6] = major;
    out[7] = 0;
    if (major === 1) out.writeUInt16LE(headerLength, 8);
    else out.writeUInt32LE(headerLength, 8);
    out.write(dict, 8 + lengthBytes, 'latin1');
    out[out.length - 1] = 0x0a;
    return out;
  }
  throw new RangeError(`shape ${formatShape(shape)} is too long for an .npy header`);
}
