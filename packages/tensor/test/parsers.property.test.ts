/**
 * Property-based tests (fast-check, fixed seeds, bounded runs) of the .npy and .safetensors
 * parsers on generated files — near-valid headers with hostile fields, flipped bytes, truncations,
 * plain noise. For every file: no crash and no hang, no allocation larger than the file justifies,
 * and either a tensor consistent with the file or an InputError naming the argument, one line.
 */
import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { ITEM_SIZE, InputError, elementCount, readTensor } from '@longattn/tensor';
import { tempDir } from './helpers.ts';

const SEED = 20261201;
const RUNS = 300;
/**
 * One file must parse (header + all its data) within this. Unloaded, the slowest file here takes
 * well under a second; the bound leaves room for a loaded CI machine while a hang, or a parse
 * quadratic in the header (minutes at 1 MB), still fails.
 */
const MAX_MS = 10_000;
/** The reader's scratch buffer may grow to 8 MiB once (decode.ts SCRATCH_MAX), plus slack. */
const SCRATCH_SLACK = (8 << 20) + (1 << 20);

type Outcome = 'tensor' | 'refused';
let slowest = 0;

/**
 * Reads `ref` as `--q` and checks the contract; returns what happened. Allocation is the growth of
 * ArrayBuffer memory across the call (memory a parser allocates stays counted until a GC, so a
 * large allocation shows even when it is freed before the call returns).
 */
function probe(ref: string, fileSize: number): Outcome {
  const before = process.memoryUsage();
  const started = performance.now();
  let outcome: Outcome;
  try {
    const got = readTensor(ref, '--q');
    if (got.data.length !== elementCount(got.shape)) throw new Error(`data holds ${got.data.length} values for shape [${got.shape}]`);
    if (elementCount(got.shape) * ITEM_SIZE[got.dtype] > fileSize) throw new Error(`shape [${got.shape}] ${got.dtype} outgrows the file`);
    outcome = 'tensor';
  } catch (error) {
    if (!(error instanceof InputError)) throw new Error(`not an InputError: ${(error as Error)?.stack ?? String(error)}`);
    if (error.argument !== '--q' || !error.message.startsWith('--q: ')) throw new Error(`does not name --q: ${error.message}`);
    if (error.message.includes('\n')) throw new Error(`more than one line: ${JSON.stringify(error.message)}`);
    if (/\bNaN\b|\[object /.test(error.message)) throw new Error(`message leaks internals: ${error.message}`);
    outcome = 'refused';
  }
  const ms = performance.now() - started;
  slowest = Math.max(slowest, ms);
  if (ms > MAX_MS) throw new Error(`took ${ms.toFixed(0)} ms`);
  const after = process.memoryUsage();
  // float32 out of f16/bf16 is twice the data bytes; anything else is the file's own size or less.
  const allowed = 2 * fileSize + SCRATCH_SLACK;
  const grew = after.arrayBuffers - before.arrayBuffers;
  if (grew > allowed) throw new Error(`allocated ${grew} bytes for a ${fileSize}-byte file`);
  const heap = after.heapUsed - before.heapUsed;
  if (heap > 16 * fileSize + (64 << 20)) throw new Error(`heap grew ${heap} bytes for a ${fileSize}-byte file`);
  return outcome;
}

/** Damage to a file: byte flips (positions taken modulo the length) and an optional truncation. */
type Damage = { flips: [number, number][]; cut: number | null } | null;

function damage(bytes: Uint8Array, how: Damage): Uint8Array {
  if (how === null) return bytes;
  const out = Uint8Array.from(bytes);
  if (out.length > 0) for (const [at, value] of how.flips) out[at % out.length] = value;
  return how.cut === null ? out : out.subarray(0, how.cut % (out.length + 1));
}

/** Half the files undamaged, so that valid ones are reached too. */
const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  fc.constant(null),
  fc.record({
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
    cut: fc.option(fc.nat()),
  }),
);
/** Mostly `usual`, sometimes one of `odd`. */
const mostly = <T>(usual: fc.Arbitrary<T>, ...odd: T[]) =>
  fc.oneof({ weight: 8, arbitrary: usual }, { weight: 1, arbitrary: fc.constantFrom(...odd) });
const dimArb = fc.oneof(
  { weight: 6, arbitrary: fc.nat(9).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('-1', '2147483648', '9007199254740993', '18446744073709551616', '1e3', '3L', "'4'", 'None') },
);

/** Headers near a valid one, with each field sometimes hostile. */
const npyArb = fc.record({
  major: mostly(fc.constantFrom(1, 2, 3), 0, 4, 255),
  minor: mostly(fc.constant(0), 1, 255),
  descr: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom("'<f4'", "'<f2'", "'<f8'", "'|f4'", "'=f2'") },
    {
      weight: 2,
      arbitrary: fc.constantFrom("'>f4'", "'<i4'", "'<c8'", "'<constructor'", "'__proto__'", "'<toString'", "[('a', '<f4')]", 'None', '3'),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map((s) => `'${s.replace(/['\\]/g, '')}'`) },
  ),
  fortran: mostly(fc.constantFrom('False', 'True'), '0', "'no'", 'None'),
  shape: fc.array(dimArb, { maxLength: 4 }),
  extra: mostly(fc.constant(''), "'x': 1, ", "'descr': '<f8', ", '(', '}', "'shape': (2,), "),
  /** Data: exactly what the shape needs (when small), or some other count of bytes. */
  exactData: mostly(fc.constant(true), false),
  dataBytes: fc.nat(700),
  lengthDelta: mostly(fc.constant(0), 1, -1, 40000, 70000),
  damage: damageArb,
});

function npyBytes(c: typeof npyArb extends fc.Arbitrary<infer T> ? T : never): Uint8Array {
  const tuple = `(${c.shape.join(', ')}${c.shape.length === 1 ? ',' : ''})`;
  const dict = `{'descr': ${c.descr}, 'fortran_order': ${c.fortran}, ${c.extra}'shape': ${tuple}, }`;
  const lengthBytes = c.major === 1 ? 2 : 4;
  const text = Buffer.from(`${dict.padEnd(Math.ceil((dict.length + 11) / 64) * 64 - 11 - lengthBytes + 1)}\n`, 'latin1');
  const prefix = Buffer.alloc(8 + lengthBytes);
  Buffer.from('\x93NUMPY', 'latin1').copy(prefix);
  prefix[6] = c.major;
  prefix[7] = c.minor;
  const length = Math.max(0, text.length + c.lengthDelta);
  if (lengthBytes === 2) prefix.writeUInt16LE(length & 0xffff, 8);
  else prefix.writeUInt32LE(length, 8);
  const dims = c.shape.map(Number);
  const itemSize = c.descr.includes('f2') ? 2 : c.descr.includes('f8') ? 8 : 4;
  const need = dims.every((d) => Number.isSafeInteger(d) && d >= 0) ? elementCount(dims) * itemSize : Infinity;
  const data = Buffer.alloc(c.exactData && need <= 1 << 16 ? need : c.dataBytes, 0x3c);
  return damage(Buffer.concat([prefix, text, data]), c.damage);
}

const dtypeArb = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('F32', 'F16', 'BF16', 'F64') },
  { weight: 1, arbitrary: fc.constantFrom('I32', 'U8', 'f32', 'constructor', '__proto__', 'toString', '') },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
const SIZES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };
/** An entry: dtype, shape and offsets each sometimes hostile; `consistent` makes the offsets fit the shape. */
const entryArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        dtype: dtypeArb,
        shape: fc.oneof(
          { weight: 5, arbitrary: fc.array(fc.nat(9), { maxLength: 4 }) },
          { weight: 1, arbitrary: fc.array(fc.constantFrom(-1, 0.5, 2 ** 53, 2 ** 64, 1e308), { minLength: 1, maxLength: 3 }) },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
        ),
        data_offsets: fc.oneof(
          { weight: 5, arbitrary: fc.tuple(fc.nat(400), fc.nat(400)) },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
        ),
        consistent: fc.boolean(),
      })
      .map(({ consistent, ...e }) => {
        const size = typeof e.dtype === 'string' ? SIZES[e.dtype] : undefined;
        if (!consistent || size === undefined || !Array.isArray(e.shape) || !e.shape.every((d) => typeof d === 'number')) return e;
        return { ...e, data_offsets: [0, elementCount(e.shape as number[]) * size] };
      }),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
const nameArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('q', 'k') },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', '__metadata__', 'toString', 'hasOwnProperty') },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);

/** Headers near a valid one: entries written as JSON text, so `__proto__` stays an ordinary key. */
const safetensorsArb = fc.record({
  entries: fc.array(fc.tuple(nameArb, entryArb), { maxLength: 3 }),
  pick: fc.option(nameArb),
  /** Data bytes: what the first entry's offsets reach (when small), or some other count. */
  exactData: mostly(fc.constant(true), false),
  dataBytes: fc.nat(500),
  length: mostly(fc.constant(null), 0n, 1n, 7n, 2n ** 32n, 100_000_001n, 2n ** 63n, 2n ** 64n - 1n),
  damage: damageArb,
});

function safetensorsBytes(c: typeof safetensorsArb extends fc.Arbitrary<infer T> ? T : never): Uint8Array {
  const json = Buffer.from(`{${c.entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(c.length ?? BigInt(json.length));
  const first = c.entries[0]?.[1] as { data_offsets?: unknown } | undefined;
  const end = Array.isArray(first?.data_offsets) ? Number(first.data_offsets[1]) : NaN;
  const data = Buffer.alloc(c.exactData && end >= 0 && end <= 1 << 16 ? end : c.dataBytes, 0x3f);
  return damage(Buffer.concat([prefix, json, data]), c.damage);
}

/** Runs `arb` through the parser as files named `name`, counting outcomes (both must occur). */
function check<T>(
  t: ExecutionContext,
  arb: fc.Arbitrary<T>,
  bytesOf: (c: T) => Uint8Array,
  refOf: (file: string, c: T) => string,
  name: string,
) {
  const dir = tempDir(t);
  const file = path.join(dir, name);
  const seen: Record<Outcome, number> = { tensor: 0, refused: 0 };
  fc.assert(
    fc.property(arb, (c) => {
      const bytes = bytesOf(c);
      fs.writeFileSync(file, bytes);
      seen[probe(refOf(file, c), bytes.length)]++;
    }),
    { seed: SEED, numRuns: RUNS },
  );
  t.log(`${name}: ${seen.tensor} read, ${seen.refused} refused`);
  t.true(seen.tensor > 0 && seen.refused > 0, 'the generator reaches both outcomes');
}

test('.npy: generated near-valid and damaged files', (t) => {
  check(t, npyArb, npyBytes, (file) => file, 'x.npy');
});

test('.safetensors: generated near-valid and damaged files, any #name', (t) => {
  check(t, safetensorsArb, safetensorsBytes, (file, c) => (c.pick === null ? file : `${file}#${c.pick}`), 'x.safetensors');
});

test('noise: random bytes (with and without a valid prefix) as .npy and .safetensors', (t) => {
  const dir = tempDir(t);
  const prefixes = [
    Buffer.alloc(0),
    Buffer.from('\x93NUMPY\x01\x00', 'latin1'),
    Buffer.from('\x93NUMPY\x03\x00\x10\x00\x00\x00', 'latin1'),
  ];
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(2), fc.boolean(), (noise, p, npy) => {
      const bytes = Buffer.concat([npy ? prefixes[p]! : Buffer.from(new BigUint64Array([BigInt(noise.length >> p)]).buffer), noise]);
      const file = path.join(dir, npy ? 'n.npy' : 'n.safetensors');
      fs.writeFileSync(file, bytes);
      probe(file, bytes.length);
    }),
    { seed: SEED, numRuns: RUNS },
  );
  t.pass();
});

test('deeply nested and oversized headers are refused quickly, within the memory bound', (t) => {
  const dir = tempDir(t);
  const npy = (dict: string, version = 2) => {
    const text = Buffer.from(`${dict}\n`, version === 3 ? 'utf8' : 'latin1');
    const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0, 0, 0, 0, 0]);
    prefix.writeUInt32LE(text.length, 8);
    return Buffer.concat([prefix, text]);
  };
  const cases: [string, Uint8Array][] = [
    ['nested.npy', npy(`{'descr': '<f4', 'fortran_order': False, 'shape': ${'('.repeat(200_000)}`)],
    ['nested-list.npy', npy(`${'['.repeat(500_000)}${']'.repeat(500_000)}`)],
    ['long-string.npy', npy(`{'descr': '${'x'.repeat(1_000_000)}', 'fortran_order': False, 'shape': (1,), }`, 3)],
    ['nested.safetensors', Buffer.concat([Buffer.from(new BigUint64Array([1_000_000n]).buffer), Buffer.from('['.repeat(1_000_000))])],
    [
      'many.safetensors',
      (() => {
        const entries = Array.from(
          { length: 20_000 },
          (_, i) => `"t${i}":{"dtype":"F32","shape":[1],"data_offsets":[${4 * i},${4 * i + 4}]}`,
        );
        const json = Buffer.from(`{${entries.join(',')}}`);
        return Buffer.concat([Buffer.from(new BigUint64Array([BigInt(json.length)]).buffer), json, Buffer.alloc(4 * 20_000)]);
      })(),
    ],
  ];
  for (const [name, bytes] of cases) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    t.is(
      probe(name === 'many.safetensors' ? `${file}#t19999` : file, bytes.length),
      name === 'many.safetensors' ? 'tensor' : 'refused',
      name,
    );
  }
  t.log(`slowest file: ${slowest.toFixed(0)} ms`);
});

test('a dtype named like an Object.prototype member is refused as an unknown dtype', (t) => {
  const dir = tempDir(t);
  for (const key of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    const npy = path.join(dir, 'p.npy');
    const dict = `{'descr': '<${key}', 'fortran_order': False, 'shape': (), }`;
    const text = Buffer.from(`${dict.padEnd(117)}\n`, 'latin1');
    fs.writeFileSync(npy, Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, text.length, 0]), text, Buffer.alloc(4)]));
    t.throws(() => readTensor(npy, '--q'), { instanceOf: InputError, message: new RegExp(`dtype "<${key}" is not supported`) });
    const st = path.join(dir, 'p.safetensors');
    const json = Buffer.from(JSON.stringify({ q: { dtype: key, shape: [], data_offsets: [0, 4] } }));
    fs.writeFileSync(st, Buffer.concat([Buffer.from(new BigUint64Array([BigInt(json.length)]).buffer), json, Buffer.alloc(4)]));
    t.throws(() => readTensor(st, '--q'), { instanceOf: InputError, message: new RegExp(`has dtype "${key}"; expected F32`) });
  }
});
