import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { LongattnClient } from '@longattn/client';
import { runLocal } from '@longattn/engine';
import { authed, jobForm, KEYS, startCluster } from '../api/support.ts';
import { LINEAR_CASES, writeCase } from './reference.ts';

test('the API takes options.linear through to the queue: O bit-identical to the local engine, labelled, no LSE; a window with it is a 400', async (t) => {
  const cluster = await startCluster({ workers: 1 });
  try {
    const c = LINEAR_CASES[1]!; // causal, Sq < Sk
    const { paths } = writeCase(join(cluster.dir, 'in'), c);
    const options = { causal: true, linear: true, blockQ: c.blockQ!, blockK: c.blockK! };
    const client = new LongattnClient({ url: cluster.api.url, key: KEYS.acme });
    const { id } = await client.submit(paths, options);
    let final = '';
    for await (const e of client.events(id)) if (e.event !== 'progress') final = e.event;
    t.is(final, 'done');
    const view = (await (await fetch(`${cluster.api.url}/v1/jobs/${id}`, authed(KEYS.acme))).json()) as { approximation?: string };
    t.is(view.approximation, 'linear');
    await client.result(id, 'out', join(cluster.dir, 'api.npy'));
    const local = join(cluster.dir, 'local.npy');
    await runLocal({ ...paths, out: local, options: { causal: true, linear: true }, blockQ: c.blockQ!, blockK: c.blockK! }, { threads: 1 });
    t.true(readFileSync(join(cluster.dir, 'api.npy')).equals(readFileSync(local)), 'O bit-identical to runLocal');
    const lse = await fetch(`${cluster.api.url}/v1/jobs/${id}/result/lse`, authed(KEYS.acme));
    t.is(lse.status, 404);
    t.regex(((await lse.json()) as { message: string }).message, /linear attention \(an approximation\): it has no LSE/);

    const form = await jobForm({
      ...paths,
      options: JSON.stringify({ kind: 'attention', linear: true, window: [8, 0] }),
    });
    const bad = await fetch(`${cluster.api.url}/v1/jobs`, authed(KEYS.acme, { method: 'POST', body: form }));
    t.is(bad.status, 400);
    const body = (await bad.json()) as { field: string; message: string };
    t.is(body.field, 'options.window');
    t.regex(body.message, /not with --linear/);
  } finally {
    await cluster.close();
  }
});
