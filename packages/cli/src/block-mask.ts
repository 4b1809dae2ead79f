import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { MAX_BLOCK_MASK_BYTES, MAX_MASK_CELLS, parseBlockMaskNpy } from '@longattn/attention';
import { InputError } from '@longattn/tensor';

/**
 * Reads `--block-mask M.npy` whole (small: at most MAX_MASK_CELLS cells, docs/limits.md):
 * bool/uint8/int/float, C order, rank 2 or 3; returns 1 where nonzero (parseBlockMaskNpy). Shape
 * checks against Q/K happen in validateSpec.
 */
export function readBlockMask(path: string): { shape: number[]; cells: Uint8Array } {
  let size = 0;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new InputError('--block-mask', `${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (size > MAX_BLOCK_MASK_BYTES)
    throw new InputError('--block-mask', `${path}: ${size} bytes, more than a mask of ${MAX_MASK_CELLS} cells needs`);
  return parseBlockMaskNpy(readFileSync(path), '--block-mask', path);
}

/** A uint8 block mask .npy's bytes (numpy reads it as `|u1`, C order): what `mask` writes and `--api` uploads. */
export function encodeBlockMask(shape: readonly number[], cells: ArrayLike<number>): Buffer {
  let dict = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + dict.length + 1;
  dict += `${' '.repeat((64 - (total % 64)) % 64)}\n`;
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(dict.length, 8);
  return Buffer.concat([head, Buffer.from(dict, 'latin1'), Uint8Array.from(cells, (c) => (c ? 1 : 0))]);
}

/** Writes a uint8 block mask .npy (encodeBlockMask). */
export function writeBlockMask(path: string, shape: readonly number[], cells: Uint8Array): void {
  writeFileSync(path, encodeBlockMask(shape, cells));
}
