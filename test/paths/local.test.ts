/**
 * User paths of `longattn run` on the local engine, as real processes, checked on what they write:
 * `--backend auto` (the default), `--allow-nonfinite` on every CPU backend, `--out-dtype`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import test from 'ava';
import { readTensor, writeTensor } from '@longattn/tensor';
import { bf16FromDefinition } from '../support/bf16.ts';
import { bruteShapes } from '../support/brute-cases.ts';
import { longattn } from '../support/cli.ts';
import { runNumpy } from '../support/numpy.ts';
import { bruteInputs } from '../support/brute-cases.ts';
import { bruteWithBound, exactness, type BruteSpec } from '../support/reference64.ts';
import { assertOneLine, onDisk } from './support.ts';

const GQA_BSHD: BruteSpec = { layout: 'bshd', B: 2, H: 6, Hk: 2, Sq: 71, Sk: 53, D: 59, causal: true, window: [9, -1], scale: 0.21 };

test('run without --backend (auto): an actual backend is chosen and reported, output exact', async (t) => {
  const c = onDisk(GQA_BSHD);
  try {
    const r = await longattn(['run', ...c.inputFlags, '--out', c.path('o.npy'), '--lse', c.path('lse.npy'), '--json']);
    t.is(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { backend: string; device: string; engine: string };
    t.true(['ort', 'wasm', 'js'].includes(result.backend) || result.backend.startsWith('gpujs'), `auto chose ${result.backend}`);
    t.is(result.engine, 'local');
    c.assertExact(t, c.path('o.npy'), c.path('lse.npy'));
  } finally {
    c.cleanup();
  }
});

/**
 * Non-finite inputs let through: a NaN query element, a +Infinity key element, a −Infinity value
 * element. What is written must be what IEEE arithmetic on the definition gives (the brute force in
 * float64): NaN rows where the reference has NaN, ±Infinity where it has them, the rest exact.
 */
function nonfiniteCase(dir: string) {
  const spec: BruteSpec = { layout: 'bhsd', B: 1, H: 2, Hk: 2, Sq: 37, Sk: 45, D: 19, causal: true };
  const { q, k, v } = bruteInputs(spec, 5);
  const at = (h: number, S: number, s: number, d: number) => (h * S + s) * spec.D + d;
  q[at(0, spec.Sq, 5, 4)] = NaN; // head 0, row 5: every score NaN
  k[at(1, spec.Sk, 20, 3)] = Infinity; // head 1, key 20: ±Infinity scores for the rows that see it
  v[at(0, spec.Sk, 30, 7)] = -Infinity; // head 0, key 30: −Infinity in column 7 of the rows that see it
  const shapes = bruteShapes(spec);
  writeTensor(`${dir}/q.npy`, shapes.q, q);
  writeTensor(`${dir}/k.npy`, shapes.k, k);
  writeTensor(`${dir}/v.npy`, shapes.v, v);
  return bruteWithBound(spec, q, k, v);
}

for (const backend of ['js', 'ort', 'wasm']) {
  // Once known defects (docs/nonfinite.md): wasm wrote a NaN row as a fully masked one; ort wrote NaN
  // into rows that cannot see the non-finite value (a −∞ in V times a masked key's 0 weight).
  test(`--allow-nonfinite on ${backend}: NaN and ±Infinity propagate as IEEE arithmetic on the definition says`, async (t) => {
    const c = onDisk({ ...GQA_BSHD, B: 1 }); // only for its temp dir
    try {
      const want = nonfiniteCase(c.dir);
      t.true([...want.ref.out].some(Number.isNaN) && want.ref.out.includes(-Infinity), 'the case reaches NaN and −Infinity');
      const args = ['run', '--q', c.path('q.npy'), '--k', c.path('k.npy'), '--v', c.path('v.npy'), '--causal'];
      const refused = await longattn([...args, '--out', c.path('o.npy'), '--backend', backend]);
      assertOneLine(t, refused, 2, /^longattn: --q: .*(NaN|non-finite)/i);
      const r = await longattn([...args, '--out', c.path('o.npy'), '--lse', c.path('lse.npy'), '--backend', backend, '--allow-nonfinite']);
      t.is(r.code, 0, r.stderr);
      const e = exactness({ out: readTensor(c.path('o.npy')).data, lse: readTensor(c.path('lse.npy')).data }, want);
      t.true(e.exact, `max |O − ref| = ${e.err} (bound ${want.bound}), max |LSE − ref| = ${e.lseErr}`);
    } finally {
      c.cleanup();
    }
  });
}

const NUMPY_F16 = `
import sys, numpy as np
f32, f16 = np.load(sys.argv[1]), np.load(sys.argv[2])
assert f16.dtype == np.float16 and f16.shape == f32.shape, (f16.dtype, f16.shape)
assert f16.tobytes() == f32.astype(np.float16).tobytes()
print('ok')
`;

test('--out-dtype f16 (.npy) and bf16 (.safetensors): O rounded from the float32 result, LSE stays float32', async (t) => {
  const c = onDisk(GQA_BSHD);
  try {
    const run = (out: string, lse: string, ...extra: string[]) =>
      longattn(['run', ...c.inputFlags, '--out', out, '--lse', lse, '--backend', 'js', '--block-q', '24', '--block-k', '20', ...extra]);
    const f32 = await run(c.path('o32.npy'), c.path('lse32.npy'));
    t.is(f32.code, 0, f32.stderr);
    c.assertExact(t, c.path('o32.npy'), c.path('lse32.npy'));
    const f16 = await run(c.path('o16.npy'), c.path('lse16.npy'), '--out-dtype', 'f16');
    t.is(f16.code, 0, f16.stderr);
    t.is(runNumpy(NUMPY_F16, [c.path('o32.npy'), c.path('o16.npy')]).trim(), 'ok', 'numpy’s own float16 of the f32 result');
    t.true(readFileSync(c.path('lse16.npy')).equals(readFileSync(c.path('lse32.npy'))), 'LSE is float32, unchanged');

    const bf16 = await run(c.path('o.safetensors'), c.path('lse.safetensors'), '--out-dtype', 'bf16');
    t.is(bf16.code, 0, bf16.stderr);
    const o = readTensor(c.path('o.safetensors'));
    t.is(o.dtype, 'bf16');
    t.deepEqual(o.shape, bruteShapes(GQA_BSHD).q);
    const raw = readFileSync(c.path('o.safetensors'));
    const n = Number(raw.readBigUInt64LE(0));
    const bits = new Uint16Array(raw.buffer.slice(raw.byteOffset + 8 + n, raw.byteOffset + raw.length));
    const want = Uint16Array.from(readTensor(c.path('o32.npy')).data, bf16FromDefinition);
    t.true(Buffer.from(bits.buffer).equals(Buffer.from(want.buffer)), 'round to nearest even of the f32 result');
    t.is(readTensor(c.path('lse.safetensors')).dtype, 'f32');
  } finally {
    c.cleanup();
  }
});

test('--out-dtype bf16 with an .npy output, or an unknown dtype: exit 2 naming --out-dtype, nothing written', async (t) => {
  const c = onDisk({ ...GQA_BSHD, B: 1, Sq: 9, Sk: 7 });
  try {
    const before = readdirSync(c.dir).sort();
    const bf16 = await longattn(['run', ...c.inputFlags, '--out', c.path('o.npy'), '--out-dtype', 'bf16']);
    assertOneLine(t, bf16, 2, /^longattn: --out-dtype: \.npy has no bfloat16/);
    const f64 = await longattn(['run', ...c.inputFlags, '--out', c.path('o.npy'), '--out-dtype', 'f64']);
    assertOneLine(t, f64, 2, /^longattn: --out-dtype: expected one of f32, f16, bf16, got "f64"$/m);
    // Refused before anything is submitted: the Redis URL is never contacted.
    const detached = await longattn([
      'run',
      ...c.inputFlags,
      '--out',
      c.path('o.npy'),
      '--out-dtype',
      'bf16',
      '--engine',
      'queue',
      '--redis',
      'redis://127.0.0.1:9',
      '--detach',
    ]);
    assertOneLine(t, detached, 2, /^longattn: --out-dtype: /);
    t.deepEqual(readdirSync(c.dir).sort(), before);
    t.false(existsSync(c.path('o.npy')));
  } finally {
    c.cleanup();
  }
});
