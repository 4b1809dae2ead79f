/**
 * Property-based tests (fast-check, fixed seed, bounded runs) of the CLI's flag value parsers
 * (packages/cli/src/parse.ts), then of `longattn run` itself on generated flag values: every value
 * is either accepted as what it says or refused with an InputError naming the flag, one line.
 */
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { InputError, writeTensor } from '@longattn/tensor';
import { parseChoice, parseInteger, parseIntegerList, parseNumber, parseWindow } from '../../packages/cli/src/parse.ts';
import { longattn, tempDir } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';

const SEED = 20261201;

/** Text a user might type for a number: digits, signs, spaces, exponents, hex, unicode digits, newlines, junk. */
const numberish = fc.oneof(
  fc.integer().map(String),
  fc.integer({ min: -3, max: 3 }).map(String),
  fc.double().map(String),
  fc.constantFrom(
    '',
    ' ',
    '1e3',
    '0x10',
    '+5',
    '-0',
    '007',
    ' 12 ',
    '1_000',
    '١٢',
    '5\n',
    '5\nx',
    'Infinity',
    'NaN',
    '9'.repeat(30),
    '9'.repeat(400),
  ),
  fc.string({ maxLength: 12 }),
  fc
    .tuple(fc.integer({ min: -2, max: 50 }), fc.constantFrom(',', ', ', ' , ', ';', ',,', '\n,'), fc.integer({ min: -2, max: 50 }))
    .map(([a, sep, b]) => `${a}${sep}${b}`),
);

/** Runs `parse(text)`: returns the value, or checks the refusal is an InputError naming `flag`, one line. */
function attempt<T>(flag: string, parse: (text: string) => T, text: string): { ok: true; value: T } | { ok: false } {
  try {
    return { ok: true, value: parse(text) };
  } catch (error) {
    if (!(error instanceof InputError)) throw new Error(`${flag} ${JSON.stringify(text)}: not an InputError: ${String(error)}`);
    if (error.argument !== flag || !error.message.startsWith(`${flag}: `)) throw new Error(`does not name ${flag}: ${error.message}`);
    if (error.message.includes('\n')) throw new Error(`more than one line: ${JSON.stringify(error.message)}`);
    return { ok: false };
  }
}

test('parseInteger: accepted values are the integer typed, in range; the rest are refused naming the flag', (t) => {
  fc.assert(
    fc.property(numberish, fc.integer({ min: -5, max: 5 }), fc.integer({ min: 0, max: 100 }), (text, min, span) => {
      const r = attempt('--block-q', parseInteger('--block-q', min, min + span), text);
      if (r.ok) {
        if (!Number.isSafeInteger(r.value) || r.value < min || r.value > min + span) throw new Error(`${text} → ${r.value}`);
        if (r.value !== Number(text.trim())) throw new Error(`${JSON.stringify(text)} → ${r.value}`);
      }
    }),
    { seed: SEED, numRuns: 2000 },
  );
  t.is(parseInteger('--threads', 1)(' 12 '), 12);
});

test('parseNumber: accepted values are finite and the number typed', (t) => {
  fc.assert(
    fc.property(numberish, (text) => {
      const r = attempt('--scale', parseNumber('--scale'), text);
      if (r.ok && (!Number.isFinite(r.value) || !Object.is(r.value, Number(text)))) throw new Error(`${text} → ${r.value}`);
    }),
    { seed: SEED, numRuns: 2000 },
  );
  t.pass();
});

test('parseWindow: accepted windows are safe integers ≥ -1, as typed; every typed L,R round-trips', (t) => {
  fc.assert(
    fc.property(numberish, (text) => {
      const r = attempt('--window', parseWindow, text);
      if (r.ok) {
        for (const side of [r.value.left, r.value.right]) {
          if (!Number.isSafeInteger(side) || side < -1) throw new Error(`${JSON.stringify(text)} → ${JSON.stringify(r.value)}`);
        }
      }
    }),
    { seed: SEED, numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.integer({ min: -1, max: 2 ** 40 }), fc.integer({ min: -1, max: 2 ** 40 }), (left, right) => {
      const got = parseWindow(`${left},${right}`);
      if (got.left !== left || got.right !== right) throw new Error(`${left},${right} → ${JSON.stringify(got)}`);
    }),
    { seed: SEED, numRuns: 500 },
  );
  t.pass();
});

test('parseChoice and parseIntegerList: only the listed choices, only lists of integers ≥ 1', (t) => {
  const choices = ['f32', 'f16', 'bf16'] as const;
  fc.assert(
    fc.property(fc.oneof(fc.constantFrom(...choices, 'F16', ' f16', 'f16\n', ''), fc.string({ maxLength: 8 })), (text) => {
      const r = attempt('--out-dtype', parseChoice('--out-dtype', choices), text);
      if (r.ok !== (choices as readonly string[]).includes(text)) throw new Error(`${JSON.stringify(text)}: ${JSON.stringify(r)}`);
    }),
    { seed: SEED, numRuns: 1000 },
  );
  fc.assert(
    fc.property(
      fc.oneof(
        numberish,
        fc.array(fc.nat(5000), { minLength: 1, maxLength: 4 }).map((a) => a.join(',')),
      ),
      (text) => {
        const r = attempt('--sizes', parseIntegerList('--sizes'), text);
        if (r.ok && !r.value.every((n) => Number.isSafeInteger(n) && n >= 1)) throw new Error(`${text} → ${r.value}`);
      },
    ),
    { seed: SEED, numRuns: 1000 },
  );
  t.pass();
});

// The real command on generated values (few runs: each is a process): exit 0 with output, or exit 2
// with one line that names the flag, and no output file either way unless it succeeded.
test('longattn run on generated flag values: done, or exit 2 with one line naming the flag', async (t) => {
  const dir = tempDir();
  for (const name of ['q', 'k', 'v']) writeTensor(join(dir, `${name}.npy`), [2, 9, 4], randomTensor(72, name.charCodeAt(0)));
  const flagArb = fc.oneof(
    fc.tuple(fc.constant('--window'), numberish),
    fc.tuple(fc.constant('--scale'), numberish),
    fc.tuple(fc.constant('--block-q'), numberish),
    fc.tuple(fc.constant('--block-k'), numberish), // not --threads: a valid 1000 would start 1000 threads
    fc.tuple(fc.constant('--layout'), fc.constantFrom('bhsd', 'bshd', 'BHSD', '', 'x')),
    fc.tuple(fc.constant('--out-dtype'), fc.constantFrom('f32', 'f16', 'bf16', 'f64', '')),
  );
  let n = 0;
  await fc.assert(
    fc.asyncProperty(flagArb, async ([flag, value]) => {
      const out = join(dir, `o${n++}.npy`);
      const r = await longattn([
        'run',
        '--q',
        join(dir, 'q.npy'),
        '--k',
        join(dir, 'k.npy'),
        '--v',
        join(dir, 'v.npy'),
        '--out',
        out,
        `${flag}=${value}`,
      ]);
      if (r.code === 0) return;
      if (r.code !== 2) throw new Error(`${flag}=${JSON.stringify(value)}: exit ${r.code}: ${r.stderr}`);
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      // Commander's own refusals (e.g. a value that looks like a flag) name the option too.
      if (lines.length !== 1 || !lines[0]!.startsWith('longattn: ') || !lines[0]!.includes(flag)) {
        throw new Error(`${flag}=${JSON.stringify(value)}: ${JSON.stringify(r.stderr)}`);
      }
    }),
    { seed: SEED, numRuns: 8 },
  );
  t.pass();
});
