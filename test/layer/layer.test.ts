import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runLayer } from '@longattn/engine';
import { readTensor } from '@longattn/tensor';
import { tempDir } from '../support/cli.ts';
import { maxAbs, maxDiff, prepare, type LayerCase } from '../support/layer-cases.ts';
import { layerReference } from '../support/layer64.ts';

/**
 * `longattn layer` on the local engine against a float64 layer written in the test
 * (test/support/layer64.ts), with the rule of docs/contracts.md, "Document layers":
 * max|Y − Y64| ≤ 4·max|Y32 − Y64| + 1e-5·max|Y64|, Y32 the same layer done naively in float32.
 */

const CASES: LayerCase[] = [
  {
    // The odd, long one: d_model not a multiple of 8, D = 80, H = 12 on Hk = 4, S = 1000, window + sinks.
    name: 'S=1000 H=12 Hk=4 D=80 d=203 biases o_proj causal window+sinks',
    spec: { B: 1, S: 1000, Skv: 1000, dModel: 203, dKv: 203, H: 12, Hk: 4, D: 80, causal: true, window: [255, 0], sinks: 4, theta: 10000 },
    biases: true,
    oProj: true,
    rank2: true,
    options: { causal: true, window: { left: 255, right: 0 }, pattern: { sinks: 4 } },
    blocks: { blockQ: 96, blockK: 160 },
  },
  {
    // Stride tiles on gathered rows (docs/math.md, "Cost follows the pattern") under projected queries: q-blocks of 100 hold 14–15 rows per class.
    name: 'S=300 H=4 Hk=2 D=16 d=37 causal window (5,0) ∪ stride 7',
    spec: { B: 1, S: 300, Skv: 300, dModel: 37, dKv: 37, H: 4, Hk: 2, D: 16, causal: true, window: [5, 0], stride: 7, theta: 10000 },
    biases: true,
    oProj: true,
    rank2: true,
    options: { causal: true, window: { left: 5, right: 0 }, pattern: { stride: 7 } },
    blocks: { blockQ: 100, blockK: 40 },
  },
  {
    name: 'B=2 S=77 D=128 H=2 d=61 no biases no o_proj full bf16 X theta=5e5',
    spec: { B: 2, S: 77, Skv: 77, dModel: 61, dKv: 61, H: 2, Hk: 2, D: 128, causal: false, theta: 500000 },
    biases: false,
    oProj: false,
    xDtype: 'bf16',
    options: {},
    blocks: { blockQ: 32, blockK: 48 },
  },
  {
    name: 'cross-attention B=2 S=50 Skv=70 H=4 Hk=2 D=16 causal (bottom-right) o_proj without biases',
    spec: { B: 2, S: 50, Skv: 70, dModel: 40, dKv: 40, H: 4, Hk: 2, D: 16, causal: true },
    biases: false,
    oProj: true,
    cross: true,
    options: { causal: true },
    blocks: { blockQ: 16, blockK: 32 },
  },
];

for (const c of CASES) {
  test(`layer matches float64: ${c.name}`, async (t) => {
    const dir = tempDir('longattn-layer-');
    const { x, xKv, w, request } = prepare(c, dir);
    const ref = layerReference(c.spec, x, xKv, w);
    const naive = layerReference(c.spec, x, xKv, w, Math.fround);
    const bound = 4 * maxDiff(naive.y, ref.y) + 1e-5 * maxAbs(ref.y);
    const result = await runLayer(request('y.npy', { attnOut: join(dir, 'o.safetensors'), lse: join(dir, 'lse.npy') }), { threads: 2 });
    const y = readTensor(join(dir, 'y.npy'));
    const { B, S, H, D, dModel } = c.spec;
    t.deepEqual(y.shape, [...(c.rank2 ? [] : [B]), S, c.oProj ? dModel : H * D]);
    const err = maxDiff(y.data, ref.y);
    t.true(err <= bound, `max|Y − Y64| = ${err}, bound ${bound}`);
    t.true(err > 0 || bound > 0); // the comparison saw numbers
    const o = readTensor(`${join(dir, 'o.safetensors')}#attn`);
    t.deepEqual(o.shape, [...(c.rank2 ? [] : [B]), S, H, D]);
    const oBound = 4 * maxDiff(naive.o, ref.o) + 1e-5 * maxAbs(ref.o);
    t.true(maxDiff(o.data, ref.o) <= oBound, `max|O − O64| = ${maxDiff(o.data, ref.o)}, bound ${oBound}`);
    const lse = readTensor(join(dir, 'lse.npy'));
    t.deepEqual(lse.shape, c.rank2 ? [H, S] : [B, H, S]);
    t.true(maxDiff(lse.data, ref.lse) <= 1e-4 * Math.max(1, maxAbs(ref.lse)), `LSE off by ${maxDiff(lse.data, ref.lse)}`);
    t.is(result.layer.rope, c.spec.theta !== undefined);
    t.true(result.layer.projectionFlops > 0 && result.flops > result.layer.projectionFlops);
  });
}

test('layer output bits do not depend on the thread count', async (t) => {
  const c = CASES[0]!;
  const dir = tempDir('longattn-layer-');
  const { request } = prepare(c, dir);
  await runLayer(request('one.npy'), { threads: 1 });
  await runLayer(request('three.npy'), { threads: 3 });
  t.true(readFileSync(join(dir, 'one.npy')).equals(readFileSync(join(dir, 'three.npy'))));
});

test('layer with the plain JS projection also meets the rule', async (t) => {
  const c = CASES[2]!;
  const dir = tempDir('longattn-layer-');
  const { x, xKv, w, request } = prepare(c, dir);
  const ref = layerReference(c.spec, x, xKv, w);
  const naive = layerReference(c.spec, x, xKv, w, Math.fround);
  const result = await runLayer(request('y.npy', { projection: 'js' }), { threads: 2 });
  t.is(result.layer.projection, 'js');
  const err = maxDiff(readTensor(join(dir, 'y.npy')).data, ref.y);
  t.true(err <= 4 * maxDiff(naive.y, ref.y) + 1e-5 * maxAbs(ref.y), `max|Y − Y64| = ${err}`);
});

test('an aborted layer leaves no output and no temporary folder', async (t) => {
  const c = CASES[1]!;
  const dir = tempDir('longattn-layer-');
  const { request } = prepare(c, dir);
  const abort = new AbortController();
  const run = runLayer(request('y.npy', { lse: join(dir, 'lse.npy') }), {
    threads: 2,
    signal: abort.signal,
    onProgress: (p) => {
      if (p.doneFlops > 0) abort.abort(new Error('stop'));
    },
  });
  await t.throwsAsync(run);
  t.deepEqual(
    readdirSync(dir).filter((f) => !['w.safetensors', 'x.safetensors'].includes(f)),
    [],
  );
});
