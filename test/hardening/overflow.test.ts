/**
 * Issue 14.2: a --scale outside float32's finite range is bad input (exit 2); scores that overflow
 * float32 at run time fail the job (exit 1) with a message naming Q's row, on every backend and on
 * the queue engine, and nothing is written — never a NaN output with exit 0.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { readTensor, writeTensor } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { longattn, tempDir } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';
import { startService, type Service } from '../queue/support.ts';
import { assertBadInput, smallInputs } from './support.ts';

const H = 2;
const S = 37;
const D = 8;
const inputs = smallInputs(H, S, D);
const flags = ['--q', inputs.q, '--k', inputs.k, '--v', inputs.v, '--backend', 'js'];

for (const scale of ['1e300', '-1e39', '3.5e38', '1e-50']) {
  test(`--scale ${scale} (not a float32 scale) → exit 2 naming --scale`, async (t) => {
    const out = join(tempDir(), 'o.npy');
    const r = await longattn(['run', ...flags, '--out', out, '--scale', scale]);
    assertBadInput(t, r, '--scale', /float32/);
    t.false(existsSync(out));
  });
}

/** O = softmax(s·q·kᵀ)·v and LSE for every row, in float64, straight from the definition. */
function attention64(q: Float32Array, k: Float32Array, v: Float32Array, scale: number): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(H * S * D);
  const lse = new Float64Array(H * S);
  const scores = new Float64Array(S);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < S; i++) {
      let max = -Infinity;
      for (let j = 0; j < S; j++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(h * S + i) * D + d]! * k[(h * S + j) * D + d]!;
        scores[j] = scale * dot;
        max = Math.max(max, scores[j]!);
      }
      let z = 0;
      for (let j = 0; j < S; j++) z += Math.exp(scores[j]! - max);
      lse[h * S + i] = max + Math.log(z);
      for (let j = 0; j < S; j++) {
        const p = Math.exp(scores[j]! - max) / z;
        for (let d = 0; d < D; d++) out[(h * S + i) * D + d]! += p * v[(h * S + j) * D + d]!;
      }
    }
  }
  return { out, lse };
}

for (const scale of [0, -0.7, 1e-40]) {
  test(`--scale ${scale} is accepted and exact (0: uniform attention; negative; subnormal)`, async (t) => {
    const dir = tempDir();
    const r = await longattn(['run', ...flags, '--out', join(dir, 'o.npy'), '--lse', join(dir, 'l.npy'), '--scale', String(scale)]);
    t.is(r.code, 0, r.stderr);
    const [q, k, v] = [inputs.q, inputs.k, inputs.v].map((f) => readTensor(f).data) as [Float32Array, Float32Array, Float32Array];
    const ref = attention64(q, k, v, Math.fround(scale));
    const out = readTensor(join(dir, 'o.npy')).data;
    const lse = readTensor(join(dir, 'l.npy')).data;
    // Softmax weights are in [0, 1] and |v| < 5 here: float32 rounding of the sums stays far below 1e-5.
    t.true(
      out.every((x, i) => Math.abs(x - ref.out[i]!) <= 1e-5),
      'O',
    );
    t.true(
      lse.every((x, i) => Math.abs(x - ref.lse[i]!) <= 1e-4),
      'LSE',
    );
  });
}

// Q row 17 of head 1 and every key around 1e20: that row's scores s·q·k ≈ 1e40 overflow float32;
// every other row's stay near 1e20 and are fine.
const big = tempDir();
const q = randomTensor(H * S * D, 5);
for (let d = 0; d < D; d++) q[(1 * S + 17) * D + d] = 1e20 * (1 + d / 10);
writeTensor(join(big, 'q.npy'), [H, S, D], q);
writeTensor(join(big, 'k.npy'), [H, S, D], randomTensor(H * S * D, 6, 1e20));
writeTensor(join(big, 'v.npy'), [H, S, D], randomTensor(H * S * D, 7));
const bigFlags = ['--q', join(big, 'q.npy'), '--k', join(big, 'k.npy'), '--v', join(big, 'v.npy')];
const MESSAGE = /^longattn: scores overflow float32 at --q head 1, query row 17 \(scale·q·k beyond ±3\.4e38 .*lower --scale/;

// gpujs:headlessgl needs an X display: the suite runs under xvfb-run (scripts/test.sh), as the conformance suite does.
for (const backend of ['js', 'wasm', 'ort', 'gpujs:cpu', 'gpujs:headlessgl']) {
  test(`${backend}: scores past float32 fail the job (exit 1, the row named), nothing written`, async (t) => {
    const dir = tempDir();
    const r = await longattn([
      'run',
      ...bigFlags,
      '--out',
      join(dir, 'o.npy'),
      '--lse',
      join(dir, 'l.npy'),
      '--backend',
      backend,
      '--threads',
      '2',
    ]);
    t.is(r.code, 1, r.stderr);
    t.regex(r.stderr, MESSAGE);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.deepEqual(readdirSync(dir), [], 'no output, no partial file');
  });
}

test('--allow-nonfinite: NaN inputs give NaN rows without the overflow check', async (t) => {
  const dir = tempDir();
  const v = randomTensor(H * S * D, 7);
  v[3] = Number.NaN;
  writeTensor(join(dir, 'v.npy'), [H, S, D], v);
  const out = join(dir, 'o.npy');
  const r = await longattn([
    'run',
    '--q',
    inputs.q,
    '--k',
    inputs.k,
    '--v',
    join(dir, 'v.npy'),
    '--out',
    out,
    '--backend',
    'js',
    '--allow-nonfinite',
  ]);
  t.is(r.code, 0, r.stderr);
  t.true(readTensor(out).data.some(Number.isNaN));
});

test('queue engine: scores past float32 fail the job on the workers (exit 1, the row named), nothing written', async (t) => {
  const redis = await startRedis();
  const services: Service[] = [];
  try {
    services.push(await startService('worker', redis.url, ['--backend', 'js'], 'cli'), await startService('reducer', redis.url, [], 'cli'));
    const dir = tempDir();
    const r = await longattn(
      ['run', ...bigFlags, '--out', join(dir, 'o.npy'), '--backend', 'js', '--engine', 'queue', '--redis', redis.url, '--block-q', '8'],
      { timeoutMs: 90_000 },
    );
    t.is(r.code, 1, r.stderr);
    t.regex(r.stderr, /scores overflow float32 at --q head 1, query row 17/);
    t.deepEqual(readdirSync(dir), []);
  } finally {
    await Promise.all(services.map((s) => s.stop()));
    await redis.close();
  }
});
