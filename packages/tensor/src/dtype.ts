/** Element types accepted on input; outputs are f32, or f16/bf16 by choice (OutDType in encode.ts). */
export type DType = 'f32' | 'f16' | 'bf16' | 'f64';

/** Bytes per element of each dtype. */
export const ITEM_SIZE: Readonly<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, f64: 8 };

/** Human name used in messages: `float32`, `float16`, `bfloat16`, `float64`. */
export const DTYPE_NAME: Readonly<Record<DType, string>> = {
  f32: 'float32',
  f16: 'float16',
  bf16: 'bfloat16',
  f64: 'float64',
};

/** Element count of a shape (1 for a scalar `[]`). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** `[3, 4]` → `[3, 4]` as text; used in one-line messages. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Throws RangeError unless every dim is a non-negative safe integer and bytes fit in a safe integer. */
export function checkShape(shape: readonly number[], itemSize: number): void {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`bad shape ${formatShape(shape)}`);
  }
  if (elementCount(shape) * itemSize > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`shape ${formatShape(shape)} is too large`);
  }
}
