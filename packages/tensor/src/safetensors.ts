/**
 * .safetensors codec: https://github.com/huggingface/safetensors#format
 * Layout: u64 LE header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}` (offsets relative to
 * the byte after the header), then the data, little-endian, C order.
 */
import { InputError } from './errors.ts';
import { DTYPE_NAME, ITEM_SIZE, elementCount, formatShape } from './dtype.ts';
import type { DType } from './dtype.ts';
import { readHeaderBytes } from './file.ts';
import type { HeaderSource } from './file.ts';
import { indexJsonObject, RepeatedKeyError } from './json-index.ts';
import type { JsonIndex } from './json-index.ts';
import { excerpt } from './npy.ts';
import type { TensorLayout } from './npy.ts';

/** Longest header we read (the safetensors library's own limit is 100 MB). */
export const SAFETENSORS_HEADER_CAP = 100_000_000;
const DTYPES: Readonly<Record<string, DType>> = { F32: 'f32', F16: 'f16', BF16: 'bf16', F64: 'f64' };
const CODES: Readonly<Record<DType, string>> = { f32: 'F32', f16: 'F16', bf16: 'BF16', f64: 'F64' };
const ACCEPTED = 'F32, F16, BF16 or F64';

/** Largest entry of one tensor we parse (a real one is ~100 bytes: dtype, shape, data_offsets). */
const ENTRY_CAP = 64 << 10;

/**
 * A .safetensors file's header, read and checked once: the raw JSON bytes (kept outside the JS
 * heap) and an index of its top-level entries, so that picking a tensor parses only its entry.
 */
export interface SafetensorsHeader {
  readonly path: string;
  /** Size of the file the header was read from. */
  readonly fileSize: number;
  readonly headerLength: number;
  readonly raw: Buffer;
  readonly index: JsonIndex;
}

/**
 * Reads and checks a .safetensors header once: the length against the cap and the file size
 * before any allocation, then the JSON's syntax in one pass (indexJsonObject, never JSON.parse of
 * the whole), a tensor name given twice refused. Every malformed case → InputError naming `argument`.
 */
export function readSafetensorsIndex(file: HeaderSource, argument: string): SafetensorsHeader {
  const bad = badInput(file.path, argument);
  if (file.size < 8) bad(`truncated header: ${file.size} bytes, a .safetensors file starts with an 8-byte header length`);
  const prefix = Buffer.alloc(8);
  readHeaderBytes(file, prefix, 0, 8, 0);
  const length = prefix.readBigUInt64LE(0);
  if (length > BigInt(SAFETENSORS_HEADER_CAP)) {
    bad(`header length ${length} exceeds the ${SAFETENSORS_HEADER_CAP}-byte cap (not a .safetensors file?)`);
  }
  const headerLength = Number(length);
  if (8 + headerLength > file.size) {
    bad(`truncated header: it says ${headerLength} bytes, the file has ${file.size - 8} after the length`);
  }
  const raw = Buffer.allocUnsafe(headerLength);
  if (!readHeaderBytes(file, raw, 0, headerLength, 8)) bad('file shrank while reading its header');
  let index: JsonIndex;
  try {
    index = indexJsonObject(raw);
  } catch (err) {
    if (err instanceof RepeatedKeyError && err.topLevel) return bad(`tensor name ${excerpt(err.key)} appears twice in the header`);
    const first = raw.toString('latin1', 0, Math.min(raw.length, 256)).trimStart()[0];
    if (first !== undefined && first !== '{') return bad(`header is not a JSON object: ${excerpt(raw.subarray(0, 80).toString('latin1'))}`);
    return bad(`header is not valid JSON: ${excerpt(raw.subarray(0, 80).toString('latin1'))} (${(err as Error).message})`);
  }
  return { path: file.path, fileSize: file.size, headerLength, raw, index };
}

/** Picks tensor `name` (optional when the file holds exactly one) out of a header read once. */
export function safetensorsLayout(header: SafetensorsHeader, name: string | undefined, argument: string): TensorLayout {
  const bad = badInput(header.path, argument);
  const { index, raw, headerLength } = header;
  const count = index.keys.size - (index.keys.has('__metadata__') ? 1 : 0);
  const first = tensorNames(index, 20);
  const listed = count === 0 ? 'none' : first.map((n) => JSON.stringify(n)).join(', ') + (count > 20 ? ', …' : '');
  if (name === undefined) {
    if (count !== 1) bad(`holds ${count} tensors, choose one with #name: ${listed}`);
    name = first[0]!;
  } else if (name === '__metadata__' || !index.keys.has(name)) {
    bad(`has no tensor ${JSON.stringify(name)}; available: ${listed}`);
  }

  const what = `tensor ${JSON.stringify(name)}`;
  const [from, to] = index.range(name)!;
  if (to - from > ENTRY_CAP) return bad(`${what}'s header entry is ${to - from} bytes; expected a small object`);
  const entry: unknown = JSON.parse(raw.toString('utf8', from, to));
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return bad(`${what} is not an object`);
  const { dtype: code, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  const dtype = typeof code === 'string' && Object.hasOwn(DTYPES, code) ? DTYPES[code] : undefined; // not 'constructor'
  if (dtype === undefined) return bad(`${what} has dtype ${excerpt(code)}; expected ${ACCEPTED}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    return bad(`${what} has shape ${excerpt(shape)}; expected a list of non-negative integers`);
  }
  const dataSize = header.fileSize - 8 - headerLength;
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    return bad(`${what} has data_offsets ${excerpt(offsets)}; expected [begin, end] with 0 ≤ begin ≤ end`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataSize) bad(`truncated data: ${what} ends at byte ${end} of the data, the file has ${dataSize}`);
  const need = elementCount(shape as number[]) * ITEM_SIZE[dtype];
  if (end - begin !== need) {
    bad(
      `size mismatch: ${what} of shape ${formatShape(shape as number[])} ${DTYPE_NAME[dtype]} needs ${need} bytes, data_offsets span ${end - begin}`,
    );
  }
  return { dtype, shape: [...(shape as number[])], dataOffset: 8 + headerLength + begin };
}

/** Reads a .safetensors header and picks tensor `name`: readSafetensorsIndex + safetensorsLayout. */
export function readSafetensorsHeader(file: HeaderSource, name: string | undefined, argument: string): TensorLayout {
  return safetensorsLayout(readSafetensorsIndex(file, argument), name, argument);
}

/** The first `max` tensor names of a header, in file order (without `__metadata__`); never copies them all. */
function tensorNames(index: JsonIndex, max: number): string[] {
  const names: string[] = [];
  for (const k of index.keys.keys()) {
    if (names.length === max) break;
    if (k !== '__metadata__') names.push(k);
  }
  return names;
}

function badInput(path: string, argument: string): (detail: string) => never {
  const where = JSON.stringify(path);
  return (detail) => {
    throw new InputError(argument, `${where}: ${detail}`);
  };
}

/** One tensor's entry for `safetensorsHeader`. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/**
 * The 8-byte length and JSON header for `entries`, data laid out in the given order with no gaps;
 * padded with spaces so that the data starts at a multiple of 8 bytes. Returns the header bytes
 * and each entry's data byte offset in the file.
 */
export function safetensorsHeader(entries: readonly SafetensorsEntry[]): { bytes: Buffer; offsets: number[] } {
  const json: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
  const offsets: number[] = [];
  let at = 0;
  for (const e of entries) {
    if (e.name === '__metadata__' || e.name in json) throw new RangeError(`bad or repeated tensor name ${JSON.stringify(e.name)}`);
    const size = elementCount(e.shape) * ITEM_SIZE[e.dtype];
    json[e.name] = { dtype: CODES[e.dtype], shape: [...e.shape], data_offsets: [at, at + size] };
    offsets.push(at);
    at += size;
  }
  const text = Buffer.from(JSON.stringify(json), 'utf8');
  const padded = Math.ceil((8 + text.length) / 8) * 8 - 8;
  const bytes = Buffer.alloc(8 + padded, 0x20);
  bytes.writeBigUInt64LE(BigInt(padded), 0);
  text.copy(bytes, 8);
  return { bytes, offsets: offsets.map((o) => o + bytes.length) };
}
