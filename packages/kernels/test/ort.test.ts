import test from 'ava';
import { exactnessBound, maxAbsDiff, naiveFloat32Attention, referenceAttention, type SpecOptions } from '@longattn/attention';
import { getBackend, type TileKernel } from '@longattn/kernels';
import { attend, makeCase } from './support.ts';

const kernels = new Map<number, Promise<TileKernel>>();
const kernel = (threads: number): Promise<TileKernel> => {
  if (!kernels.has(threads)) kernels.set(threads, getBackend('ort').create({ threads }));
  return kernels.get(threads)!;
};
test.after.always(async () => {
  for (const k of kernels.values()) await (await k).dispose?.();
});

test('ort probes ready and names its device', async (t) => {
  const backend = getBackend('ort');
  t.is(await backend.probe(), null);
  t.is((await kernel(1)).device, 'cpu (onnxruntime MLAS, 1 thread)');
  t.is((await kernel(2)).device, 'cpu (onnxruntime MLAS, 2 threads)');
});

const shapes: [string, number, number, number, SpecOptions, number?, number?][] = [
  ['dense 113×203 D 59, one tile', 113, 203, 59, {}],
  ['dense 113×203 D 111, one tile', 113, 203, 111, {}],
  ['causal Sq<Sk 113×203 D 59, one tile', 113, 203, 59, { causal: true }],
  ['causal Sq>Sk 203×113 D 111 (fully masked rows), one tile', 203, 113, 111, { causal: true }],
  ['window (0,0) 113×203 D 59, one tile', 113, 203, 59, { window: { left: 0, right: 0 } }],
  ['window (7,3) scale 0.3 203×203 D 64, one tile', 203, 203, 64, { window: { left: 7, right: 3 }, scale: 0.3 }],
  ['causal Sq>Sk 203×113 D 59, tiles 32×48 merged', 203, 113, 59, { causal: true }, 32, 48],
  ['causal 300×300 D 64, tiles 64×64 merged', 300, 300, 64, { causal: true }, 64, 64],
  // Masked tiles with ≥ 128 columns every row sees run split: mask-free middle, masked edges, merged.
  ['causal 200×600 D 64, one tile split (mask-free columns + masked diagonal)', 200, 600, 64, { causal: true }],
  ['window (400,20) 200×700 D 48, one tile split in three', 200, 700, 48, { window: { left: 400, right: 20 } }],
];

for (const [title, Sq, Sk, D, options, blockQ, blockK] of shapes) {
  test(`ort matches the float64 reference: ${title}`, async (t) => {
    const c = makeCase(Sq, Sk, D, options);
    const ours = await attend(await kernel(1), c, blockQ ?? Sq, blockK ?? Sk);
    const ref = referenceAttention(c.spec, c.q, c.k, c.v);
    const naive = naiveFloat32Attention(c.spec, c.q, c.k, c.v);
    // FlashAttention's rule: at most twice the naive float32 error, plus 1e-5 of slack.
    t.true(maxAbsDiff(ours.out, ref.out) <= exactnessBound(naive.out, ref.out), `out ${maxAbsDiff(ours.out, ref.out)}`);
    t.true(maxAbsDiff(ours.lse, ref.lse) <= 1e-4, `lse ${maxAbsDiff(ours.lse, ref.lse)}`);
    t.false(ours.out.some(Number.isNaN) || ours.lse.some(Number.isNaN), 'no NaN');
  });
}

test('ort: rows that see no key come out o = 0, lse = -Infinity', async (t) => {
  const c = makeCase(203, 113, 59, { causal: true }); // rows i < 90 see no key (j ≤ i − 90)
  const ours = await attend(await kernel(1), c, 203, 113);
  t.true(ours.lse.subarray(0, 90).every((x) => x === -Infinity));
  t.true(ours.out.subarray(0, 90 * 59).every((x) => x === 0));
  t.true(Number.isFinite(ours.lse[90]!));
});

test('ort is bitwise deterministic across runs and thread counts', async (t) => {
  const c = makeCase(300, 500, 59, { causal: true }, 7);
  const bytes = (r: { out: Float32Array; lse: Float32Array }): Buffer =>
    Buffer.concat([Buffer.from(r.out.buffer), Buffer.from(r.lse.buffer)]);
  const first = bytes(await attend(await kernel(1), c, 64, 128));
  t.true(first.equals(bytes(await attend(await kernel(1), c, 64, 128))));
  t.true(first.equals(bytes(await attend(await kernel(2), c, 64, 128))));
});

test('ort takes SharedArrayBuffer-backed inputs', async (t) => {
  const c = makeCase(64, 96, 59, {}, 3);
  const share = (a: Float32Array): Float32Array => {
    const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
    s.set(a);
    return s;
  };
  const plain = await attend(await kernel(1), c, 64, 96);
  const shared = await attend(await kernel(1), { ...c, q: share(c.q), k: share(c.k), v: share(c.v) }, 64, 96);
  t.true(Buffer.from(plain.out.buffer).equals(Buffer.from(shared.out.buffer)));
});
