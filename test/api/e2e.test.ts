import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { LongattnClient, type ProgressEvent } from '@longattn/client';
import { localBytes, oddInputs } from '../queue/support.ts';
import { authed, KEYS, ODD_OPTIONS, startCluster } from './support.ts';

test('upload → progress events in order → done; O and LSE bytes equal the local engine’s; list, report, openapi, metrics', async (t) => {
  const cluster = await startCluster({ workers: 2, workerArgs: ['--throttle-ms', '40'] });
  const inputs = oddInputs();
  try {
    const client = new LongattnClient({ url: cluster.api.url, key: KEYS.acme });
    const { id, state } = await client.submit(
      { q: join(inputs.dir, 'q.npy'), k: join(inputs.dir, 'k.npy'), v: join(inputs.dir, 'v.npy') },
      ODD_OPTIONS,
    );
    t.regex(id, /^la-/);
    t.is(state, 'queued');

    const progress: ProgressEvent[] = [];
    let final: { event: string; state: string } | undefined;
    for await (const e of client.events(id)) {
      if (e.event === 'progress') progress.push(e.data);
      else final = { event: e.event, state: e.data.state };
    }
    t.deepEqual(final, { event: 'done', state: 'done' });
    t.true(progress.length >= 2, `several progress events (${progress.length})`);
    for (let i = 1; i < progress.length; i++) t.true(progress[i]!.done >= progress[i - 1]!.done, 'tile counts never go back');
    const total = progress[0]!.total;
    t.true(total > 0);
    t.is(progress.at(-1)!.done, total);
    const reduced = progress.flatMap((p) => p.reduced).sort((a, b) => a - b);
    t.deepEqual(
      reduced,
      Array.from({ length: progress[0]!.qBlocks }, (_, i) => i),
      'every q-block reported written exactly once',
    );

    // A late client gets the current state first: one progress event (done), then done.
    const late = [];
    for await (const e of client.events(id)) late.push(e.event);
    t.deepEqual(late, ['progress', 'done']);

    const expected = await localBytes(inputs);
    await client.result(id, 'out', join(inputs.dir, 'api-out.npy'));
    await client.result(id, 'lse', join(inputs.dir, 'api-lse.npy'));
    t.true(readFileSync(join(inputs.dir, 'api-out.npy')).equals(expected.out), 'O bit-identical to runLocal');
    t.true(readFileSync(join(inputs.dir, 'api-lse.npy')).equals(expected.lse), 'LSE bit-identical to runLocal');

    const view = await client.get(id);
    t.is(view.state, 'done');
    t.deepEqual(view.shape, { B: 1, H: 4, Hk: 2, Sq: 300, Sk: 517, D: 24 });
    t.true(view.finishedAt! >= view.startedAt! && view.startedAt! >= view.createdAt);
    const report = (await (await fetch(`${cluster.api.url}/v1/jobs/${id}/result/report`, authed(KEYS.acme))).json()) as { state: string };
    t.is(report.state, 'done');

    // Newest first, paginated.
    const second = await client.submit(
      { q: join(inputs.dir, 'q.npy'), k: join(inputs.dir, 'k.npy'), v: join(inputs.dir, 'v.npy') },
      ODD_OPTIONS,
    );
    const page = await client.list({ limit: 1 });
    t.is(page.total, 2);
    t.deepEqual(
      page.jobs.map((j) => j.id),
      [second.id],
    );
    t.is(page.next, 1);
    const rest = await client.list({ limit: 1, offset: 1 });
    t.deepEqual(
      rest.jobs.map((j) => j.id),
      [id],
    );
    t.is(rest.next, undefined);
    t.is((await client.wait(second.id)).state, 'done');

    const openapi = (await (await fetch(`${cluster.api.url}/openapi.json`)).json()) as { paths: Record<string, object> };
    for (const path of ['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/events', '/v1/jobs/{id}/result/{what}'])
      t.truthy(openapi.paths[path], path);

    const metrics = await (await fetch(`${cluster.api.url}/metrics`)).text();
    t.regex(metrics, /^longattn_jobs\{state="done"\} 2$/m);
    t.regex(metrics, /^longattn_queue_depth\{queue="tiles",state="waiting"\} 0$/m);
    const uploaded = Number(/^longattn_upload_bytes_total (\d+)/m.exec(metrics)?.[1]);
    const inputBytes = ['q', 'k', 'v'].reduce((n, p) => n + readFileSync(join(inputs.dir, `${p}.npy`)).length, 0);
    t.is(uploaded, 2 * inputBytes);
    const tiles = Number(/^longattn_tile_seconds_count (\d+)/m.exec(metrics)?.[1]);
    t.true(tiles > 0, `tile latencies observed (${tiles})`);
    t.regex(metrics, /^longattn_job_failures_total 0$/m);
    t.true(Number(/^longattn_job_gflops (\S+)/m.exec(metrics)?.[1]) > 0, 'GFLOP/s of the last finished job');
    t.is((await fetch(`${cluster.api.url}/healthz`)).status, 200);
    t.is((await fetch(`${cluster.api.url}/readyz`)).status, 200);
  } finally {
    await cluster.close();
    inputs.cleanup();
  }
});
