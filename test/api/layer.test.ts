import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { LongattnClient } from '@longattn/client';
import { runLayer, type LayerRequest } from '@longattn/engine';
import { writeSafetensors } from '@longattn/tensor';
import { longattn, tempDir } from '../support/cli.ts';
import { prepare, type LayerCase } from '../support/layer-cases.ts';
import { authed, jobForm, KEYS, startCluster } from './support.ts';

/**
 * `kind: "layer"` jobs through the HTTP API, on real api, worker and reducer processes: Y
 * (result/out) and LSE bitwise the local engine's `layer` (same backend, the same projection GEMM:
 * the machine's default, ort where it loads), through the SDK's submitLayer (self-attention,
 * biases, o_proj, causal + window + sinks) and `longattn layer --engine queue --api` (cross-
 * attention with x-kv); 400s naming the field for a missing part, bad heads and weights that do
 * not fit.
 */

const SELF: LayerCase = {
  name: 'self',
  spec: { B: 1, S: 200, Skv: 200, dModel: 45, dKv: 45, H: 6, Hk: 2, D: 16, causal: true, window: [40, 0], sinks: 2, theta: 10000 },
  biases: true,
  oProj: true,
  options: { causal: true, window: { left: 40, right: 0 }, pattern: { sinks: 2 } },
  blocks: { blockQ: 64, blockK: 64 },
};

const CROSS: LayerCase = {
  name: 'cross',
  spec: { B: 2, S: 30, Skv: 70, dModel: 37, dKv: 37, H: 6, Hk: 2, D: 12, causal: false },
  biases: false,
  oProj: true,
  cross: true,
  options: {},
  blocks: { blockQ: 16, blockK: 32 },
};

test('layer job via the API: Y and LSE bitwise the local engine’s (SDK and CLI --api); 400s name the field', async (t) => {
  const cluster = await startCluster();
  try {
    const self = tempDir('longattn-api-layer-');
    const cross = tempDir('longattn-api-layer-');
    const s = prepare(SELF, self);
    const c = prepare(CROSS, cross);
    const local = async (request: LayerRequest) => {
      await runLayer({ ...request, backend: 'js' }, { threads: 1 });
      return [readFileSync(request.out), readFileSync(request.lse!)];
    };
    const wantSelf = await local(s.request('local-y.npy', { lse: join(self, 'local-lse.npy') }));
    const wantCross = await local(c.request('local-y.npy', { lse: join(cross, 'local-lse.npy') }));

    // The SDK: self-attention with every option a layer takes.
    const client = new LongattnClient({ url: cluster.api.url, key: KEYS.acme });
    const r = s.request('unused.npy');
    const { id } = await client.submitLayer(
      { x: join(self, 'x.safetensors'), weights: r.weights },
      {
        heads: 6,
        kvHeads: 2,
        prefix: r.prefix!,
        ropeTheta: 10000,
        causal: true,
        window: [40, 0],
        sinks: 2,
        backend: 'js',
        blockQ: 64,
        blockK: 64,
        tensors: { x: 'hidden' },
      },
    );
    const view = await client.wait(id);
    t.is(view.state, 'done', view.error);
    t.is(view.kind, 'layer');
    t.is(view.flops.done, view.flops.total, 'every stage counted');
    await client.result(id, 'out', join(self, 'api-y.npy'));
    await client.result(id, 'lse', join(self, 'api-lse.npy'));
    t.true(readFileSync(join(self, 'api-y.npy')).equals(wantSelf[0]!), 'SDK: Y bits');
    t.true(readFileSync(join(self, 'api-lse.npy')).equals(wantSelf[1]!), 'SDK: LSE bits');
    t.is((await fetch(`${cluster.api.url}/v1/jobs/${id}/result/out`, authed(KEYS.other))).status, 404, 'another tenant');

    // The CLI through the API: cross-attention (x-kv part), no RoPE.
    const rc = c.request('cli-y.npy', { lse: join(cross, 'cli-lse.npy') });
    const cli = await longattn(
      [
        'layer',
        ...[
          '--x',
          rc.x,
          '--x-kv',
          rc.xKv!,
          '--weights',
          rc.weights,
          '--prefix',
          rc.prefix!,
          '--heads',
          '6',
          '--kv-heads',
          '2',
          '--no-rope',
        ],
        ...['--out', rc.out, '--lse', rc.lse!, '--backend', 'js', '--block-q', '16', '--block-k', '32'],
        ...['--engine', 'queue', '--api', cluster.api.url, '--quiet'],
      ],
      { env: { LONGATTN_API_KEY: KEYS.acme } },
    );
    t.is(cli.code, 0, cli.stderr);
    t.true(readFileSync(rc.out).equals(wantCross[0]!), 'CLI --api: Y bits');
    t.true(readFileSync(rc.lse!).equals(wantCross[1]!), 'CLI --api: LSE bits');

    // 400s naming the field.
    const post = async (parts: Record<string, string | Blob>) => {
      const response = await fetch(`${cluster.api.url}/v1/jobs`, authed(KEYS.acme, { method: 'POST', body: await jobForm(parts) }));
      return { status: response.status, body: (await response.json()) as { field?: string; message: string } };
    };
    const options = (extra: object) =>
      JSON.stringify({ kind: 'layer', heads: 6, kvHeads: 2, prefix: r.prefix, tensors: { x: 'hidden' }, ...extra });
    const missing = await post({ options: options({}), x: join(self, 'x.safetensors') });
    t.deepEqual([missing.status, missing.body.field], [400, 'weights'], missing.body.message);
    const noHeads = await post({ options: JSON.stringify({ kind: 'layer' }), x: join(self, 'x.safetensors'), weights: r.weights });
    t.deepEqual([noHeads.status, noHeads.body.field], [400, 'options.heads'], noHeads.body.message);
    const badHeads = await post({ options: options({ heads: 5, kvHeads: 5 }), x: join(self, 'x.safetensors'), weights: r.weights });
    t.deepEqual([badHeads.status, badHeads.body.field], [400, 'weights'], badHeads.body.message);
    t.regex(badHeads.body.message, /q_proj\.weight" has 96 rows, not a positive multiple of 5 heads/);
    const bad = join(self, 'bad.safetensors');
    writeSafetensors(bad, {
      'q_proj.weight': { shape: [96, 45], data: new Float32Array(96 * 45) },
      'k_proj.weight': { shape: [32, 44], data: new Float32Array(32 * 44) },
      'v_proj.weight': { shape: [32, 45], data: new Float32Array(32 * 45) },
    });
    const mismatch = await post({ options: options({ prefix: '' }), x: join(self, 'x.safetensors'), weights: bad });
    t.deepEqual([mismatch.status, mismatch.body.field], [400, 'weights'], mismatch.body.message);
    t.regex(mismatch.body.message, /"k_proj\.weight" has 44 columns; --x's d_model is 45/);
    t.false(/longattn-upload-/.test(mismatch.body.message), 'no temp path in the message');
    const wrongKind = await post({ options: JSON.stringify({ kind: 'attention', heads: 6 }), q: join(self, 'x.safetensors') });
    t.deepEqual([wrongKind.status, wrongKind.body.field], [400, 'options.heads']);
  } finally {
    await cluster.close();
  }
});
