import { InputError } from '@longattn/tensor';
import type { Pattern } from './pattern.ts';

/** Block-mask cells a job may carry (docs/limits.md): the mask travels inside the spec (queue manifest). */
export const MAX_MASK_CELLS = 1 << 20;
/** Global positions a job may name (each is an interval per row when planning). */
export const MAX_GLOBALS = 4096;

/**
 * Pattern flags as given (CLI/API): `blockMask.cells` is the mask's values in C order, shape
 * [nQb, nKb] or [H, nQb, nKb], any number type (nonzero = visible).
 */
export interface PatternOptions {
  sinks?: number;
  global?: number[];
  stride?: number;
  blockMask?: { block: number; shape: readonly number[]; cells: ArrayLike<number> };
}

function positiveInt(flag: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
    throw new InputError(flag, `expected an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

/** Checks pattern options against the shapes (InputError naming the flag) and returns the spec's Pattern. */
export function checkPattern(options: PatternOptions, dims: { H: number; Sq: number; Sk: number }): Pattern | undefined {
  const out: Pattern = {};
  if (options.sinks !== undefined) out.sinks = positiveInt('--sinks', options.sinks, 0);
  if (options.stride !== undefined) out.stride = positiveInt('--stride', options.stride, 1);
  if (options.global !== undefined) {
    if (!Array.isArray(options.global)) throw new InputError('--global', 'expected a list of positions I,J,…');
    if (options.global.length > MAX_GLOBALS)
      throw new InputError('--global', `at most ${MAX_GLOBALS} positions, got ${options.global.length}`);
    const bound = Math.max(dims.Sq, dims.Sk);
    for (const g of options.global) {
      if (typeof g !== 'number' || !Number.isInteger(g) || g < 0 || g >= bound) {
        throw new InputError('--global', `expected positions 0 … ${bound - 1}, got ${String(g)}`);
      }
    }
    out.global = [...new Set(options.global)].sort((a, b) => a - b);
  }
  if (options.blockMask !== undefined) out.blockMask = checkBlockMask(options.blockMask, dims);
  if (out.sinks === 0) delete out.sinks; // no sink is no pattern
  return Object.keys(out).length > 0 ? out : undefined;
}

function checkBlockMask({ block, shape, cells }: NonNullable<PatternOptions['blockMask']>, dims: { H: number; Sq: number; Sk: number }) {
  const B = positiveInt('--mask-block', block, 1);
  const nQb = Math.ceil(dims.Sq / B);
  const nKb = Math.ceil(dims.Sk / B);
  const want = `[${nQb},${nKb}] or [${dims.H},${nQb},${nKb}] (⌈Sq/B⌉, ⌈Sk/B⌉ with B = ${B})`;
  const ok2 = shape.length === 2 && shape[0] === nQb && shape[1] === nKb;
  const ok3 = shape.length === 3 && shape[0] === dims.H && shape[1] === nQb && shape[2] === nKb;
  if (!ok2 && !ok3) throw new InputError('--block-mask', `expected shape ${want}, got [${shape.join(',')}]`);
  const heads = ok3 ? dims.H : 1;
  const count = heads * nQb * nKb;
  if (count > MAX_MASK_CELLS) throw new InputError('--block-mask', `${count} cells, at most ${MAX_MASK_CELLS} (raise --mask-block)`);
  if (cells.length !== count) throw new InputError('--block-mask', `expected ${count} values, got ${cells.length}`);
  const bytes = new Uint8Array(count);
  for (let x = 0; x < count; x++) {
    const c = cells[x]!;
    if (typeof c === 'number' && Number.isNaN(c)) throw new InputError('--block-mask', `value ${x} is NaN`);
    bytes[x] = c ? 1 : 0;
  }
  return { block: B, heads, nQb, nKb, cells: Buffer.from(bytes).toString('base64') };
}
