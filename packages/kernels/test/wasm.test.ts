import test from 'ava';
import { exactnessBound, maxAbsDiff, naiveFloat32Attention, referenceAttention, type SpecOptions } from '@longattn/attention';
import { getBackend, jsTile, type TileJob, type TileKernel } from '@longattn/kernels';
import { attend, makeCase, wholeJob, type Case } from './support.ts';

const bytes = (p: { o: Float32Array; lse: Float32Array } | { out: Float32Array; lse: Float32Array }): Buffer =>
  Buffer.concat([Buffer.from(('o' in p ? p.o : p.out).buffer), Buffer.from(p.lse.buffer)]);

let shared: Promise<TileKernel> | undefined;
const kernel = (): Promise<TileKernel> => (shared ??= getBackend('wasm').create());

test('wasm probes ready and names its device', async (t) => {
  t.is(await getBackend('wasm').probe(), null);
  const k = await kernel();
  t.is(k.backend, 'wasm');
  t.is(k.device, 'cpu (WASM SIMD)');
});

const shapes: [string, number, number, number, SpecOptions, number?, number?][] = [
  ['dense 113×203 D 59, one tile', 113, 203, 59, {}],
  ['dense 113×203 D 111, one tile', 113, 203, 111, {}],
  ['dense 64×64 D 64, one tile', 64, 64, 64, {}],
  ['dense 1×1 D 1, one tile', 1, 1, 1, {}],
  ['causal Sq<Sk 113×203 D 59, one tile', 113, 203, 59, { causal: true }],
  ['causal Sq>Sk 203×113 D 111 (fully masked rows), one tile', 203, 113, 111, { causal: true }],
  ['window (0,0) 113×203 D 59, one tile', 113, 203, 59, { window: { left: 0, right: 0 } }],
  ['causal window (0,0) 203×113 D 64, one tile', 203, 113, 64, { causal: true, window: { left: 0, right: 0 } }],
  ['window (7,3) scale 0.3 203×203 D 64, one tile', 203, 203, 64, { window: { left: 7, right: 3 }, scale: 0.3 }],
  ['window (−1,5) 113×203 D 128, one tile', 113, 203, 128, { window: { left: -1, right: 5 } }],
  ['dense 113×203 D 59, tiles 32×48 merged (ragged edges, full tiles)', 113, 203, 59, {}, 32, 48],
  ['causal Sq>Sk 203×113 D 59, tiles 32×48 merged', 203, 113, 59, { causal: true }, 32, 48],
  ['causal 300×300 D 64, tiles 64×64 merged', 300, 300, 64, { causal: true }, 64, 64],
  ['window (20,0) 257×1031 D 111, tiles 40×100 merged', 257, 1031, 111, { window: { left: 20, right: 0 } }, 40, 100],
];

for (const [title, Sq, Sk, D, options, blockQ, blockK] of shapes) {
  test(`wasm matches the float64 reference: ${title}`, async (t) => {
    const c = makeCase(Sq, Sk, D, options);
    const ours = blockQ ? await attend(await kernel(), c, blockQ, blockK ?? Sk) : await wholeJobResult(c);
    const ref = referenceAttention(c.spec, c.q, c.k, c.v);
    const naive = naiveFloat32Attention(c.spec, c.q, c.k, c.v);
    // FlashAttention's rule: at most twice the naive float32 error, plus 1e-5 of slack.
    t.true(maxAbsDiff(ours.out, ref.out) <= exactnessBound(naive.out, ref.out), `out ${maxAbsDiff(ours.out, ref.out)}`);
    t.true(maxAbsDiff(ours.lse, ref.lse) <= 1e-4, `lse ${maxAbsDiff(ours.lse, ref.lse)}`);
    t.false(ours.out.some(Number.isNaN) || ours.lse.some(Number.isNaN), 'no NaN');
  });
}

async function wholeJobResult(c: Case): Promise<{ out: Float32Array; lse: Float32Array }> {
  const p = await (await kernel()).run(wholeJob(c));
  return { out: p.o, lse: p.lse };
}

test('wasm: rows that see no key come out o = 0, lse = -Infinity', async (t) => {
  const c = makeCase(203, 113, 59, { causal: true }); // rows i < 90 see no key (j ≤ i − 90)
  const p = await (await kernel()).run(wholeJob(c));
  t.true(p.lse.subarray(0, 90).every((x) => x === -Infinity));
  t.true(p.o.subarray(0, 90 * 59).every((x) => x === 0));
  t.true(Number.isFinite(p.lse[90]!));
});

test('wasm: a tile inside the diagonal, offset starts, agrees with jsTile', async (t) => {
  // Rows 100..139 against keys 96..223 of a causal 400×400 head with window (50, 0):
  // per-row intervals start and end inside the tile, some rows see keys at both ends cut.
  const c = makeCase(400, 400, 59, { causal: true, window: { left: 50, right: 0 } }, 5);
  const D = 59;
  const job: TileJob = {
    ...wholeJob(c),
    rows: 40,
    keys: 128,
    qStart: 100,
    kStart: 96,
    q: c.q.subarray(100 * D, 140 * D),
    k: c.k.subarray(96 * D, 224 * D),
    v: c.v.subarray(96 * D, 224 * D),
  };
  const ours = await (await kernel()).run(job);
  const js = jsTile(job);
  t.is(ours.kStart, 96);
  t.is(ours.rows, 40);
  // jsTile works in float64: the float32 kernel stays within a few float32 ulps of it.
  t.true(maxAbsDiff(ours.o, js.o) <= 1e-5, `o ${maxAbsDiff(ours.o, js.o)}`);
  t.true(maxAbsDiff(ours.lse, js.lse) <= 1e-5, `lse ${maxAbsDiff(ours.lse, js.lse)}`);
});

test('wasm: exp is accurate to a few float32 ulps over [−90, 0] and exactly 0 below −87', async (t) => {
  // Row r has scores (0, x_r) over keys with values (0, 1): its output is e/(1 + e), e = exp(x_r),
  // which keeps e's relative precision (for tiny e the sum rounds to 1 and o = e exactly).
  const n = 2000;
  const x = Float32Array.from({ length: n }, (_, r) => -90 + (90 * r) / (n - 1));
  const job: TileJob = {
    rows: n,
    keys: 2,
    D: 1,
    scale: 1,
    qStart: 0,
    kStart: 0,
    rule: { diag: 0, left: Infinity, right: Infinity },
    full: true,
    q: x,
    k: Float32Array.of(0, 1),
    v: Float32Array.of(0, 1),
  };
  const o = (await (await kernel()).run(job)).o;
  let worst = 0;
  for (let r = 0; r < n; r++) {
    const e = Math.exp(x[r]!);
    if (x[r]! < -87) {
      t.is(o[r], 0, `x = ${x[r]}`);
      continue;
    }
    worst = Math.max(worst, Math.abs(o[r]! - e / (1 + e)) / (e / (1 + e)));
  }
  // Polynomial (~1 ulp) + the sum's and the division's rounding: a few ulps of 2^-24 ≈ 6e-8.
  t.true(worst < 4e-7, `worst relative error ${worst}`);
});

test('wasm: a full tile (no masking) equals the same tile masked by an unbounded rule', async (t) => {
  const c = makeCase(70, 90, 111, {}, 9);
  const k = await kernel();
  const masked = await k.run(wholeJob(c));
  const full = await k.run({ ...wholeJob(c), full: true });
  t.true(bytes(masked).equals(bytes(full)));
});

test('wasm is bitwise deterministic across runs and kernel instances', async (t) => {
  const c = makeCase(300, 500, 59, { causal: true }, 7);
  const first = bytes(await attend(await kernel(), c, 64, 128));
  t.true(first.equals(bytes(await attend(await kernel(), c, 64, 128))));
  const other = await getBackend('wasm').create();
  t.true(first.equals(bytes(await attend(other, c, 64, 128))));
});

test('wasm: a small tile after a big one reuses the grown memory without stale data', async (t) => {
  const k = await getBackend('wasm').create();
  const big = makeCase(256, 2048, 64, {}, 11);
  const small = makeCase(13, 17, 5, { causal: true }, 12);
  const fresh = bytes(await (await getBackend('wasm').create()).run(wholeJob(small)));
  await k.run(wholeJob(big));
  t.true(bytes(await k.run(wholeJob(small))).equals(fresh));
});
