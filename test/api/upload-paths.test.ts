import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { LongattnClient } from '@longattn/client';
import { writeTensor } from '@longattn/tensor';
import { randomTensor } from '../support/random.ts';
import { localBytes, oddInputs } from '../queue/support.ts';
import { authed, jobForm, KEYS, ODD_OPTIONS, startCluster } from './support.ts';

/**
 * The upload's two paths (upload.ts, tensor-part.ts): float32 bhsd parts after the options go
 * straight into their blobs; a part before the options, or of another layout or dtype, goes
 * through a temp file and the engine's conversion. Each path's bytes equal the local engine's.
 */
test('options after the tensors, bshd and f16 parts: the temp-file path, O and LSE bit-identical to runLocal; a NaN streamed in: 400 naming the part, nothing left', async (t) => {
  const cluster = await startCluster({ workers: 1 });
  const inputs = oddInputs();
  try {
    const client = new LongattnClient({ url: cluster.api.url, key: KEYS.acme });
    const files = { q: join(inputs.dir, 'q.npy'), k: join(inputs.dir, 'k.npy'), v: join(inputs.dir, 'v.npy') };
    const result = async (id: string, name: string) => {
      const job = await client.wait(id);
      t.is(job.state, 'done', job.error);
      await client.result(id, 'out', join(inputs.dir, `${name}-out.npy`));
      await client.result(id, 'lse', join(inputs.dir, `${name}-lse.npy`));
      return { out: readFileSync(join(inputs.dir, `${name}-out.npy`)), lse: readFileSync(join(inputs.dir, `${name}-lse.npy`)) };
    };

    // Options last: the tensor parts arrive before the layout is known.
    const last = await fetch(
      `${cluster.api.url}/v1/jobs`,
      authed(KEYS.acme, { method: 'POST', body: await jobForm({ ...files, options: JSON.stringify(ODD_OPTIONS) }) }),
    );
    t.is(last.status, 201);
    const got = await result(((await last.json()) as { id: string }).id, 'last');
    const expected = await localBytes(inputs);
    t.true(got.out.equals(expected.out), 'O bit-identical to runLocal (options last)');
    t.true(got.lse.equals(expected.lse), 'LSE bit-identical to runLocal (options last)');

    // bshd ([S, H, D]) with Q in float16: converted by the engine, O back in Q's layout.
    const bshd = { q: join(inputs.dir, 'q-bshd.npy'), k: join(inputs.dir, 'k-bshd.npy'), v: join(inputs.dir, 'v-bshd.npy') };
    writeTensor(bshd.q, [300, 4, 24], randomTensor(300 * 4 * 24, 31), { dtype: 'f16' });
    writeTensor(bshd.k, [517, 2, 24], randomTensor(517 * 2 * 24, 32));
    writeTensor(bshd.v, [517, 2, 24], randomTensor(517 * 2 * 24, 33));
    const { id } = await client.submit(bshd, { ...ODD_OPTIONS, layout: 'bshd' });
    const gotBshd = await result(id, 'bshd');
    const expectedBshd = await localBytes(inputs, { ...bshd, options: { causal: true, layout: 'bshd' } });
    t.true(gotBshd.out.equals(expectedBshd.out), 'O bit-identical to runLocal (bshd, f16 q)');
    t.true(gotBshd.lse.equals(expectedBshd.lse), 'LSE bit-identical to runLocal (bshd, f16 q)');

    // A NaN deep in a part written straight into its blob: refused, its blobs and record removed.
    const values = randomTensor(4 * 300 * 24, 21);
    values[3 * 300 * 24 + 7] = Number.NaN;
    writeTensor(join(inputs.dir, 'q-nan.npy'), [4, 300, 24], values);
    const blobsBefore = new Set(cluster.blobFiles().map((f) => f.split('/')[0]));
    const nan = await fetch(
      `${cluster.api.url}/v1/jobs`,
      authed(KEYS.acme, {
        method: 'POST',
        body: await jobForm({ options: JSON.stringify(ODD_OPTIONS), ...files, q: join(inputs.dir, 'q-nan.npy') }),
      }),
    );
    const body = (await nan.json()) as { field: string; message: string };
    t.is(nan.status, 400);
    t.is(body.field, 'q');
    t.regex(body.message, new RegExp(`^q: non-finite value at flat index ${3 * 300 * 24 + 7} `));
    t.deepEqual(
      cluster.blobFiles().filter((f) => !blobsBefore.has(f.split('/')[0])),
      [],
      'no blob of the refused job',
    );
    t.is((await client.list()).total, 2, 'the refused upload is no job');
  } finally {
    inputs.cleanup();
    await cluster.close();
  }
});
