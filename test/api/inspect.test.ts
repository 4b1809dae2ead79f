import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { type ApiError, LongattnClient } from '@longattn/client';
import { runInspect, type InspectRequest } from '@longattn/engine';
import { uniformF32, writeTensor } from '@longattn/tensor';
import { tempDir } from '../support/cli.ts';
import { authed, jobForm, KEYS, startCluster } from './support.ts';

/**
 * `kind: "inspect"` jobs through the HTTP API, on a real api, worker and reducer processes: the
 * report, map, received and weights bytes equal the local engine's (runInspect) on an odd shape
 * (GQA, causal + window, 40 fully masked rows); 409 before done; another tenant gets 404.
 */
test('inspect job via the API: report, map, received, weights bitwise the local engine’s; 409 until done; 404 for another tenant', async (t) => {
  const cluster = await startCluster({ workers: 2, workerArgs: ['--throttle-ms', '60'] });
  const dir = tempDir();
  try {
    writeTensor(join(dir, 'q.npy'), [4, 300, 7], uniformF32(4 * 300 * 7, 31));
    writeTensor(join(dir, 'k.npy'), [2, 260, 7], uniformF32(2 * 260 * 7, 32));
    const options = {
      causal: true,
      window: [40, -1] as [number, number],
      rows: [30, 50] as [number, number],
      topK: 4,
      sinksStat: 2,
      localStat: 5,
      received: true,
      weightsOut: true,
      map: true,
      mapSize: 16,
      backend: 'js',
      blockQ: 64,
      blockK: 128,
    };
    const client = new LongattnClient({ url: cluster.api.url, key: KEYS.acme });
    const { id } = await client.submitInspect({ q: join(dir, 'q.npy'), k: join(dir, 'k.npy') }, options);

    // Not done yet (throttled workers): 409 for every result; another tenant: 404 for the job and its results.
    for (const what of ['report', 'map', 'received']) {
      const early = await fetch(`${cluster.api.url}/v1/jobs/${id}/result/${what}`, authed(KEYS.acme));
      t.is(early.status, 409, `${what} before done`);
    }
    const other = new LongattnClient({ url: cluster.api.url, key: KEYS.other });
    const gone = await t.throwsAsync(other.inspectReport(id));
    t.is((gone as ApiError).status, 404);
    t.is((await fetch(`${cluster.api.url}/v1/jobs/${id}/result/map`, authed(KEYS.other))).status, 404);
    t.is((await fetch(`${cluster.api.url}/v1/jobs/${id}`, authed(KEYS.other))).status, 404);

    const view = await client.wait(id);
    t.is(view.state, 'done', view.error);
    t.is(view.kind, 'inspect');
    t.is(view.progress.done, view.progress.total, 'both passes counted');
    // Other tenants still get 404 once it is done.
    t.is((await fetch(`${cluster.api.url}/v1/jobs/${id}/result/report`, authed(KEYS.other))).status, 404);

    const request: InspectRequest = {
      q: join(dir, 'q.npy'),
      k: join(dir, 'k.npy'),
      options: { causal: true, window: { left: 40, right: Infinity } },
      rows: { from: 30, to: 50 },
      topK: 4,
      sinksStat: 2,
      localStat: 5,
      received: join(dir, 'r.npy'),
      weightsOut: join(dir, 'w.npy'),
      map: join(dir, 'm.png'),
      mapSize: 16,
      backend: 'js',
      blockQ: 64,
      blockK: 128,
    };
    const local = await runInspect(request, { threads: 1 });
    const report = await fetch(`${cluster.api.url}/v1/jobs/${id}/result/report`, authed(KEYS.acme));
    t.is(report.headers.get('content-type'), 'application/json; charset=utf-8');
    t.is(await report.text(), JSON.stringify(local.report), 'report: the local engine’s JSON');
    t.deepEqual(await client.inspectReport(id), JSON.parse(JSON.stringify(local.report)));
    t.is(local.report.heads[0]!.rows, 260, '40 of 300 rows see no key');
    for (const [what, file] of [
      ['map', 'm.png'],
      ['received', 'r.npy'],
      ['weights', 'w.npy'],
    ] as const) {
      const bytes = Buffer.from(await client.inspectOutput(id, what));
      t.true(bytes.equals(readFileSync(join(dir, file))), `${what}: the local engine’s bytes`);
    }

    // Bad input: 400 naming the field, nothing submitted.
    const attention = await fetch(
      `${cluster.api.url}/v1/jobs`,
      authed(KEYS.acme, {
        method: 'POST',
        body: await jobForm({ options: JSON.stringify({ kind: 'attention', topK: 3 }), q: join(dir, 'q.npy') }),
      }),
    );
    t.is(attention.status, 400);
    t.is(((await attention.json()) as { field: string }).field, 'options.topK');
    const withV = await fetch(
      `${cluster.api.url}/v1/jobs`,
      authed(KEYS.acme, {
        method: 'POST',
        body: await jobForm({
          options: JSON.stringify({ kind: 'inspect' }),
          q: join(dir, 'q.npy'),
          k: join(dir, 'k.npy'),
          v: join(dir, 'k.npy'),
        }),
      }),
    );
    t.is(withV.status, 400);
    t.is(((await withV.json()) as { field: string }).field, 'v');
    const rows = await client.submitInspect({ q: join(dir, 'q.npy'), k: join(dir, 'k.npy') }, { rows: [10, 400] }).catch((e) => e);
    t.is((rows as ApiError).status, 400);
    t.regex((rows as ApiError).message, /^options\.rows: /);

    const openapi = (await (await fetch(`${cluster.api.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    for (const what of ['report', 'map', 'received', 'weights']) t.truthy(openapi.paths[`/v1/jobs/{id}/result/${what}`], what);

    await client.cancel(id); // discards the result
    t.deepEqual(cluster.blobFiles(), [], 'no blob left');
  } finally {
    await cluster.close();
  }
});
