import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { LongattnClient } from '@longattn/client';
import { runInspect, runLayer, runLocal, type JobRequest } from '@longattn/engine';
import { readTensor, writeTensor } from '@longattn/tensor';
import { longattn, tempDir } from '../support/cli.ts';
import { maxAbs, maxDiff, prepare, type LayerCase } from '../support/layer-cases.ts';
import { layerReference } from '../support/layer64.ts';
import { randomTensor } from '../support/random.ts';
import { bruteWithBound, exactness } from '../support/reference64.ts';
import { authed, jobForm, KEYS, startCluster } from './support.ts';

/**
 * Pattern flags through the HTTP API, for every kind, on real api, worker and reducer processes:
 * `sinks`, `global`, `stride` in the options and a block mask as the `mask` part (with
 * `maskBlock`). Attention (the SDK and `run --engine queue --api`, which sends the pattern and the
 * mask), inspect and layer jobs give the local engine's bits, exact against float64 references
 * written from the rule (test/support/reference64.ts, layer64.ts); a layer's result/attn is its O
 * as `--attn-out` writes it; `run --linear --api` is labelled an approximation. A mask part with a bad shape, without maskBlock or maskBlock without a
 * mask: 400 naming the field.
 */

const [H, Hk, Sq, Sk, D, BLOCK] = [2, 1, 101, 119, 6, 20];
const [NQB, NKB] = [Math.ceil(Sq / BLOCK), Math.ceil(Sk / BLOCK)];
const CELLS = Array.from(randomTensor(H * NQB * NKB, 41), (x) => (x > 0.4 ? 1 : 0));

/** A float32 .npy block mask (any number type is a mask; nonzero = visible). */
function writeMask(path: string, shape: number[], cells: number[]): void {
  writeTensor(path, shape, Float32Array.from(cells));
}

test('attention and inspect jobs with sinks ∪ globals ∪ stride ∪ a per-head mask part: the local engine’s bits, exact; 400s name the field', async (t) => {
  const cluster = await startCluster();
  const dir = tempDir('longattn-api-patterns-');
  try {
    const q = randomTensor(H * Sq * D, 42);
    const k = randomTensor(Hk * Sk * D, 43);
    const v = randomTensor(Hk * Sk * D, 44);
    writeTensor(join(dir, 'q.npy'), [H, Sq, D], q);
    writeTensor(join(dir, 'k.npy'), [Hk, Sk, D], k);
    writeTensor(join(dir, 'v.npy'), [Hk, Sk, D], v);
    const mask = join(dir, 'mask.npy');
    writeMask(mask, [H, NQB, NKB], CELLS);
    const pattern = { sinks: 3, global: [49, 50], stride: 7, blockMask: { block: BLOCK, shape: [H, NQB, NKB], cells: CELLS } };
    const base: Omit<JobRequest, 'out'> = {
      q: join(dir, 'q.npy'),
      k: join(dir, 'k.npy'),
      v: join(dir, 'v.npy'),
      options: { causal: true, window: { left: 5, right: 0 }, pattern },
      backend: 'js',
      blockQ: 16,
      blockK: 32,
    };
    await runLocal({ ...base, out: join(dir, 'local.npy'), lse: join(dir, 'local-lse.npy') }, { threads: 1 });
    const want = { out: readFileSync(join(dir, 'local.npy')), lse: readFileSync(join(dir, 'local-lse.npy')) };
    const ref = bruteWithBound(
      {
        layout: 'bhsd',
        B: 1,
        H,
        Hk,
        Sq,
        Sk,
        D,
        causal: true,
        window: [5, 0],
        sinks: 3,
        global: [49, 50],
        stride: 7,
        blockMask: pattern.blockMask,
      },
      q,
      k,
      v,
    );
    const exact = exactness({ out: readTensor(join(dir, 'local.npy')).data, lse: readTensor(join(dir, 'local-lse.npy')).data }, ref);
    t.true(exact.exact, `local: err ${exact.err} (bound ${ref.bound}), lse err ${exact.lseErr}`);

    // The SDK: the pattern in the options, the mask as bytes.
    const client = new LongattnClient({ url: cluster.api.url, key: KEYS.acme });
    const flags = { causal: true, window: [5, 0] as [number, number], sinks: 3, global: [49, 50], stride: 7, maskBlock: BLOCK };
    const blocks = { backend: 'js', blockQ: 16, blockK: 32 };
    const { id } = await client.submit({ q: base.q, k: base.k, v: base.v, mask: readFileSync(mask) }, { ...flags, ...blocks });
    const view = await client.wait(id);
    t.is(view.state, 'done', view.error);
    await client.result(id, 'out', join(dir, 'sdk.npy'));
    await client.result(id, 'lse', join(dir, 'sdk-lse.npy'));
    t.true(readFileSync(join(dir, 'sdk.npy')).equals(want.out), 'SDK: O bits');
    t.true(readFileSync(join(dir, 'sdk-lse.npy')).equals(want.lse), 'SDK: LSE bits');
    const attn = await fetch(`${cluster.api.url}/v1/jobs/${id}/result/attn`, authed(KEYS.acme));
    t.is(attn.status, 404, 'result/attn is a layer job’s');

    // The CLI through the API sends the pattern flags and the mask file (it dropped them before).
    const cli = await longattn(
      [
        'run',
        ...['--q', base.q, '--k', base.k, '--v', base.v, '--causal', '--window', '5,0', '--sinks', '3', '--global', '49,50'],
        ...['--stride', '7', '--block-mask', mask, '--mask-block', String(BLOCK), '--backend', 'js', '--block-q', '16', '--block-k', '32'],
        ...['--out', join(dir, 'cli.npy'), '--lse', join(dir, 'cli-lse.npy'), '--engine', 'queue', '--api', cluster.api.url, '--quiet'],
      ],
      { env: { LONGATTN_API_KEY: KEYS.acme } },
    );
    t.is(cli.code, 0, cli.stderr);
    t.true(readFileSync(join(dir, 'cli.npy')).equals(want.out), 'CLI --api: O bits');
    t.true(readFileSync(join(dir, 'cli-lse.npy')).equals(want.lse), 'CLI --api: LSE bits');

    // Linear attention through the API is labelled an approximation, and gives the local bits.
    await runLocal({ ...base, options: { causal: true, linear: true }, out: join(dir, 'linear.npy') }, { threads: 1 });
    const linear = await longattn(
      [
        'run',
        ...['--q', base.q, '--k', base.k, '--v', base.v, '--causal', '--linear', '--backend', 'js', '--block-q', '16', '--block-k', '32'],
        ...['--out', join(dir, 'cli-linear.npy'), '--engine', 'queue', '--api', cluster.api.url, '--json'],
      ],
      { env: { LONGATTN_API_KEY: KEYS.acme } },
    );
    t.is(linear.code, 0, linear.stderr);
    t.is(JSON.parse(linear.stdout).approximation, 'linear');
    t.true(readFileSync(join(dir, 'cli-linear.npy')).equals(readFileSync(join(dir, 'linear.npy'))), 'CLI --api --linear: O bits');

    // Inspect with the same pattern: the local engine's report.
    const inspected = await client.submitInspect(
      { q: base.q, k: base.k, mask: readFileSync(mask) },
      { ...flags, ...blocks, topK: 3, rows: [45, 55] },
    );
    t.is((await client.wait(inspected.id)).state, 'done');
    const local = await runInspect(
      { q: base.q, k: base.k, options: base.options, backend: 'js', blockQ: 16, blockK: 32, topK: 3, rows: { from: 45, to: 55 } },
      { threads: 1 },
    );
    t.deepEqual(await client.inspectReport(inspected.id), JSON.parse(JSON.stringify(local.report)), 'inspect: the local report');
    const plain = await runInspect(
      { q: base.q, k: base.k, options: { causal: true }, backend: 'js', topK: 3, rows: { from: 45, to: 55 } },
      { threads: 1 },
    );
    t.notDeepEqual(local.report.heads[0]!.entropy, plain.report.heads[0]!.entropy, 'the pattern changes what inspect sees');

    // 400s naming the field; nothing queued for them.
    const post = async (parts: Record<string, string | Blob>) => {
      const response = await fetch(`${cluster.api.url}/v1/jobs`, authed(KEYS.acme, { method: 'POST', body: await jobForm(parts) }));
      return { status: response.status, body: (await response.json()) as { field?: string; message: string } };
    };
    const tensors = { q: base.q, k: base.k, v: base.v };
    const opts = (extra: object) => JSON.stringify({ kind: 'attention', causal: true, backend: 'js', ...extra });
    const noBlock = await post({ options: opts({}), ...tensors, mask });
    t.deepEqual([noBlock.status, noBlock.body.field], [400, 'options.maskBlock'], noBlock.body.message);
    const noMask = await post({ options: opts({ maskBlock: BLOCK }), ...tensors });
    t.deepEqual([noMask.status, noMask.body.field], [400, 'mask'], noMask.body.message);
    const wrong = join(dir, 'wrong.npy');
    writeMask(wrong, [NQB, NKB + 1], new Array(NQB * (NKB + 1)).fill(1));
    const badShape = await post({ options: opts({ maskBlock: BLOCK }), ...tensors, mask: wrong });
    t.deepEqual([badShape.status, badShape.body.field], [400, 'mask'], badShape.body.message);
    t.regex(badShape.body.message, /expected shape \[6,6\] or \[2,6,6\]/);
    writeFileSync(join(dir, 'junk.npy'), 'not a mask');
    const junk = await post({ options: opts({ maskBlock: BLOCK }), ...tensors, mask: join(dir, 'junk.npy') });
    t.deepEqual([junk.status, junk.body.field], [400, 'mask'], junk.body.message);
    t.regex(junk.body.message, /not a \.npy file/);
    const badGlobal = await post({ options: opts({ global: [500] }), ...tensors });
    t.deepEqual([badGlobal.status, badGlobal.body.field], [400, 'options.global'], badGlobal.body.message);
    t.is((await client.list()).total, 4, 'only the good jobs were queued (SDK, CLI, linear, inspect)');
  } finally {
    await cluster.close();
  }
});

const LAYER: LayerCase = {
  name: 'layer with a block mask ∪ stride, GQA, odd d_model',
  spec: {
    B: 1,
    S: 90,
    Skv: 90,
    dModel: 37,
    dKv: 37,
    H: 4,
    Hk: 2,
    D: 10,
    causal: true,
    stride: 9,
    blockMask: { block: 16, shape: [6, 6], cells: Array.from(randomTensor(36, 7), (x) => (x > 0.3 ? 1 : 0)) },
    theta: 10000,
  },
  biases: true,
  oProj: true,
  options: {},
  blocks: { blockQ: 16, blockK: 32 },
};

test('layer job with a mask part and stride: Y, LSE and result/attn bitwise the local layer’s (SDK and CLI --api --attn-out), exact', async (t) => {
  const cluster = await startCluster();
  const dir = tempDir('longattn-api-patterns-layer-');
  try {
    const blockMask = LAYER.spec.blockMask!;
    const c: LayerCase = { ...LAYER, options: { causal: true, pattern: { stride: 9, blockMask } } };
    const { x, xKv, w, request } = prepare(c, dir);
    const local = request('local-y.npy', { attnOut: join(dir, 'local-o.npy'), lse: join(dir, 'local-lse.npy'), backend: 'js' });
    await runLayer(local, { threads: 1 });
    const ref = layerReference(c.spec, x, xKv, w);
    const naive = layerReference(c.spec, x, xKv, w, Math.fround);
    const err = maxDiff(readTensor(local.out).data, ref.y);
    t.true(err <= 4 * maxDiff(naive.y, ref.y) + 1e-5 * maxAbs(ref.y), `max|Y − Y64| = ${err}`);
    const oErr = maxDiff(readTensor(local.attnOut!).data, ref.o);
    t.true(oErr <= 4 * maxDiff(naive.o, ref.o) + 1e-5 * maxAbs(ref.o), `max|O − O64| = ${oErr}`);

    const mask = join(dir, 'mask.npy');
    writeMask(mask, [...blockMask.shape], [...Array.from(blockMask.cells)]);
    const client = new LongattnClient({ url: cluster.api.url, key: KEYS.acme });
    const { id } = await client.submitLayer(
      { x: local.x.replace(/#hidden$/, ''), weights: local.weights, mask: readFileSync(mask) },
      {
        heads: 4,
        kvHeads: 2,
        prefix: local.prefix!,
        causal: true,
        stride: 9,
        maskBlock: 16,
        tensors: { x: 'hidden' },
        backend: 'js',
        blockQ: 16,
        blockK: 32,
      },
    );
    t.is((await client.wait(id)).state, 'done');
    for (const [what, file] of [
      ['out', local.out],
      ['lse', local.lse!],
      ['attn', local.attnOut!],
    ] as const) {
      await client.result(id, what, join(dir, `sdk-${what}.npy`));
      t.true(readFileSync(join(dir, `sdk-${what}.npy`)).equals(readFileSync(file)), `SDK: ${what} bits`);
    }

    const cli = await longattn(
      [
        'layer',
        ...[
          '--x',
          local.x,
          '--weights',
          local.weights,
          '--prefix',
          local.prefix!,
          '--heads',
          '4',
          '--kv-heads',
          '2',
          '--rope-theta',
          '10000',
        ],
        ...[
          '--causal',
          '--stride',
          '9',
          '--block-mask',
          mask,
          '--mask-block',
          '16',
          '--backend',
          'js',
          '--block-q',
          '16',
          '--block-k',
          '32',
        ],
        ...[
          '--out',
          join(dir, 'cli-y.npy'),
          '--attn-out',
          join(dir, 'cli-o.npy'),
          '--engine',
          'queue',
          '--api',
          cluster.api.url,
          '--quiet',
        ],
      ],
      { env: { LONGATTN_API_KEY: KEYS.acme } },
    );
    t.is(cli.code, 0, cli.stderr);
    t.true(readFileSync(join(dir, 'cli-y.npy')).equals(readFileSync(local.out)), 'CLI --api: Y bits');
    t.true(readFileSync(join(dir, 'cli-o.npy')).equals(readFileSync(local.attnOut!)), 'CLI --api --attn-out: O bits');

    // Another tenant: 404.
    const attention = await fetch(`${cluster.api.url}/v1/jobs/${id}/result/attn`, authed(KEYS.other));
    t.is(attention.status, 404, 'another tenant');
  } finally {
    await cluster.close();
  }
});
