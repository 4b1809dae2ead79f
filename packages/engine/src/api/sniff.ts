import { InputError } from '@longattn/tensor';

/** Bytes of a header we look at while it streams in: past this the full check after the upload decides. */
const SNIFF_CAP = 1 << 20;
const NPY_DTYPES = ['f4', 'f2', 'f8'];
const SAFETENSORS_DTYPES = ['F32', 'F16', 'BF16', 'F64'];

/** What the first bytes of a tensor part said. */
export type Sniffed = 'npy' | 'safetensors';

/**
 * Checks an uploading tensor part's header as its first chunks arrive, so a wrong format or dtype
 * fails before the rest is read, in the API's words (the full check of the header, with the same
 * codecs as the CLI, follows in tensor-part.ts). feed() returns the format once known; it throws InputError(field).
 * `tensor`: the safetensors tensor the job names (else the file's only one).
 */
export function headerSniffer(
  field: string,
  tensor?: string,
): { feed(chunk: Buffer): Sniffed | undefined; readonly format: Sniffed | undefined } {
  let head = Buffer.alloc(0);
  let format: Sniffed | undefined;
  let done = false;
  const bad = (detail: string): never => {
    throw new InputError(field, detail);
  };
  const npy = (): boolean => {
    if (head.length < 12) return false;
    const major = head[6]!;
    if (![1, 2, 3].includes(major) || head[7] !== 0) bad(`unsupported .npy format version ${major}.${head[7]}; expected 1.0, 2.0 or 3.0`);
    const start = major === 1 ? 10 : 12;
    const length = major === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
    if (start + length > SNIFF_CAP) return true;
    if (head.length < start + length) return false;
    const text = head.subarray(start, start + length).toString('latin1');
    const descr = /'descr'\s*:\s*'([<>|=]?)([a-zA-Z]\d*)'/.exec(text);
    if (!descr) bad(`.npy header without a plain dtype: ${JSON.stringify(text.trim().slice(0, 80))}`);
    if (descr![1] === '>' || !NPY_DTYPES.includes(descr![2]!)) {
      bad(`dtype '${descr![1]}${descr![2]}' is not supported; expected '<f4', '<f2' or '<f8' (little-endian float32, float16, float64)`);
    }
    return true;
  };
  const safetensors = (): boolean => {
    if (head.length < 8) return false;
    const length = head.readBigUInt64LE(0);
    if (length > BigInt(100 << 20)) bad(`neither .npy nor .safetensors (a safetensors header of ${length} bytes?)`);
    if (8 + Number(length) > SNIFF_CAP) return true;
    if (head.length < 8 + Number(length)) return false;
    let header: Record<string, { dtype?: unknown }>;
    try {
      header = JSON.parse(head.subarray(8, 8 + Number(length)).toString('utf8'));
    } catch {
      return bad('neither .npy nor .safetensors (its header is not JSON)');
    }
    const names = Object.keys(header).filter((n) => n !== '__metadata__');
    const name = tensor ?? (names.length === 1 ? names[0] : undefined);
    if (name === undefined) bad(`.safetensors holds ${names.length} tensors; name one in options.tensors.${field}`);
    const dtype = header[name!]?.dtype;
    if (dtype === undefined) bad(`.safetensors has no tensor ${JSON.stringify(name)}`);
    if (!SAFETENSORS_DTYPES.includes(String(dtype))) bad(`dtype ${JSON.stringify(dtype)} is not supported; expected F32, F16, BF16 or F64`);
    return true;
  };
  return {
    get format() {
      return format;
    },
    feed(chunk) {
      if (done) return format;
      head = Buffer.concat([head, chunk.subarray(0, SNIFF_CAP - head.length)]);
      if (!format && head.length >= 6) format = head.subarray(0, 6).equals(Buffer.from('\x93NUMPY', 'latin1')) ? 'npy' : 'safetensors';
      if (format) done = format === 'npy' ? npy() : safetensors();
      if (!done && head.length >= SNIFF_CAP) done = true;
      return format;
    },
  };
}
