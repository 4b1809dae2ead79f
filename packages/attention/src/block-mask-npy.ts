import { InputError } from '@longattn/tensor';
import { MAX_MASK_CELLS } from './pattern-options.ts';

/** Little-endian (or byte) integer, bool and float dtypes a block mask may have, by numpy descr. */
const DTYPES: Record<string, { size: number; read: (b: Buffer, at: number) => number | bigint }> = {
  b1: { size: 1, read: (b, at) => b[at]! },
  u1: { size: 1, read: (b, at) => b[at]! },
  i1: { size: 1, read: (b, at) => b.readInt8(at) },
  u2: { size: 2, read: (b, at) => b.readUInt16LE(at) },
  i2: { size: 2, read: (b, at) => b.readInt16LE(at) },
  u4: { size: 4, read: (b, at) => b.readUInt32LE(at) },
  i4: { size: 4, read: (b, at) => b.readInt32LE(at) },
  u8: { size: 8, read: (b, at) => b.readBigUInt64LE(at) },
  i8: { size: 8, read: (b, at) => b.readBigInt64LE(at) },
  f4: { size: 4, read: (b, at) => b.readFloatLE(at) },
  f8: { size: 8, read: (b, at) => b.readDoubleLE(at) },
};

/** The most bytes a block mask .npy can need: a header and MAX_MASK_CELLS float64 cells. */
export const MAX_BLOCK_MASK_BYTES = 65536 + MAX_MASK_CELLS * 8;

/**
 * Parses a block mask `.npy` held whole in memory (`--block-mask`'s file, the API's `mask` part):
 * bool/uint8/int/float, little-endian, C order, rank 2 or 3, at most MAX_MASK_CELLS cells; returns
 * 1 where nonzero. InputError(`argument`, "`label`: why") otherwise. Shape checks against Q/K
 * happen in checkPattern (docs/contracts.md, "Pattern flags").
 */
export function parseBlockMaskNpy(bytes: Uint8Array, argument: string, label: string): { shape: number[]; cells: Uint8Array } {
  const bad = (why: string): never => {
    throw new InputError(argument, `${label}: ${why}`);
  };
  const file = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (file.length > MAX_BLOCK_MASK_BYTES) bad(`${file.length} bytes, more than a mask of ${MAX_MASK_CELLS} cells needs`);
  if (file.length < 10 || file.toString('latin1', 0, 6) !== '\x93NUMPY') bad('not a .npy file');
  const major = file[6]!;
  const headerLen = major === 1 ? file.readUInt16LE(8) : file.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = file.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([<|=]?)([a-z]\d)'/.exec(header);
  const dtype = descr && DTYPES[descr[2]!];
  if (!descr || !dtype || (dtype.size > 1 && descr[1] === '>'))
    bad(`dtype ${descr?.[0] ?? '?'}: expected bool, (u)int or float, little-endian`);
  if (!/'fortran_order':\s*False/.test(header)) bad('Fortran order is not supported');
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (shapeText === undefined) bad('no shape in the header');
  const shape = shapeText!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (shape.length < 2 || shape.length > 3 || shape.some((n) => !Number.isSafeInteger(n) || n < 1)) {
    bad(`shape (${shapeText}): expected [nQb, nKb] or [H, nQb, nKb]`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count > MAX_MASK_CELLS) bad(`${count} cells, at most ${MAX_MASK_CELLS} (raise --mask-block)`);
  const data = start + headerLen;
  if (file.length < data + count * dtype!.size) bad(`holds ${file.length - data} data bytes, shape needs ${count * dtype!.size}`);
  const cells = new Uint8Array(count); // 1 = visible (nonzero), 0 = masked
  for (let x = 0; x < count; x++) {
    const c = dtype!.read(file, data + x * dtype!.size);
    if (typeof c === 'number' && Number.isNaN(c)) bad(`value ${x} is NaN`);
    cells[x] = c ? 1 : 0;
  }
  return { shape, cells };
}
