import { InputError } from '@longattn/tensor';

/** Flag value parsers: each throws InputError naming the flag, with what was expected and what came. */

export function parseInteger(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    const n = Number(text);
    if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InputError(
        flag,
        `expected an integer in ${min}..${max === Number.MAX_SAFE_INTEGER ? '∞' : max}, got ${JSON.stringify(text)}`,
      );
    }
    return n;
  };
}

export function parseNumber(flag: string) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n)) throw new InputError(flag, `expected a finite number, got ${JSON.stringify(text)}`);
    return n;
  };
}

/** `--window L,R`: inclusive, -1 = unbounded side (accepted as typed: `--window -1,9`). */
export function parseWindow(text: string): { left: number; right: number } {
  const m = /^\s*(-?\d+)\s*,\s*(-?\d+)\s*$/.exec(text);
  const left = m ? Number(m[1]) : NaN;
  const right = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(left) || !Number.isSafeInteger(right) || left < -1 || right < -1)
    throw new InputError('--window', `expected L,R with integers ≥ -1, got ${JSON.stringify(text)}`);
  return { left, right };
}

export function parseChoice<T extends string>(flag: string, choices: readonly T[]) {
  return (text: string): T => {
    if (!(choices as readonly string[]).includes(text))
      throw new InputError(flag, `expected one of ${choices.join(', ')}, got ${JSON.stringify(text)}`);
    return text as T;
  };
}

/** Comma-separated positive integers, e.g. `--sizes 1024,4096`. */
export function parseIntegerList(flag: string) {
  return (text: string): number[] => text.split(',').map((part) => parseInteger(flag, 1)(part));
}

/** `--redis` for commands that take `--redis URL` or `--api URL`: one of them is needed. */
export function requireRedis(url: string | undefined): string {
  if (!url) throw new InputError('--redis', 'required (a Redis URL, or LONGATTN_REDIS), unless --api URL is given');
  return url;
}
