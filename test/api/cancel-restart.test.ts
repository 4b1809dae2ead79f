import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { LongattnClient } from '@longattn/client';
import { connectRedis } from '@longattn/engine/queue';
import { localBytes, oddInputs, until } from '../queue/support.ts';
import { KEYS, ODD_OPTIONS, startApi, startCluster } from './support.ts';

test('cancel mid-job: running tiles stop, queued ones are removed, no partials or inputs left behind', async (t) => {
  const cluster = await startCluster({ workerArgs: ['--throttle-ms', '250'] });
  const inputs = oddInputs();
  const redis = connectRedis(cluster.redis.url);
  try {
    const client = new LongattnClient({ url: cluster.api.url, key: KEYS.acme });
    const { id } = await client.submit(
      { q: join(inputs.dir, 'q.npy'), k: join(inputs.dir, 'k.npy'), v: join(inputs.dir, 'v.npy') },
      ODD_OPTIONS,
    );
    const events = (async () => {
      const seen = [];
      for await (const e of client.events(id)) seen.push(e);
      return seen;
    })();
    await until('a tile done', async () => ((await client.get(id)).progress.done > 0 ? true : undefined));
    const mine = () => cluster.blobFiles().filter((f) => f.startsWith(`${id}/`));
    t.true(
      mine().some((f) => f.startsWith(`${id}/in/`)),
      'inputs were in the blob store',
    );
    const cancelled = await client.cancel(id);
    t.deepEqual(cancelled, { id, state: 'cancelled', was: 'running' });
    t.is((await client.get(id)).state, 'cancelled');
    const seen = await events;
    t.is(seen.at(-1)!.event, 'failed');
    t.is((seen.at(-1)!.data as { state: string }).state, 'cancelled');
    // A tile in flight may still finish; nothing of the job may reappear after it.
    await new Promise((r) => setTimeout(r, 1500));
    t.deepEqual(mine(), [], 'no inputs, partials or outputs');
    t.is(await redis.llen('bull:{longattn}:tiles:wait'), 0, 'queued tiles removed');
    t.is(await redis.zcard('bull:{longattn}:tiles:active'), 0);
    const done = (await client.get(id)).progress.done;
    await new Promise((r) => setTimeout(r, 600));
    t.is((await client.get(id)).progress.done, done, 'no tile ran after the cancel');
    await t.throwsAsync(client.result(id, 'out', join(inputs.dir, 'x.npy')), { message: /cancelled/ });
  } finally {
    redis.disconnect();
    await cluster.close();
    inputs.cleanup();
  }
});

test('the api killed and restarted mid-job loses no job: the new process serves it to the end, bits unchanged', async (t) => {
  const cluster = await startCluster({ workerArgs: ['--throttle-ms', '60'] });
  const inputs = oddInputs();
  try {
    const client = new LongattnClient({ url: cluster.api.url, key: KEYS.acme });
    const { id } = await client.submit(
      { q: join(inputs.dir, 'q.npy'), k: join(inputs.dir, 'k.npy'), v: join(inputs.dir, 'v.npy') },
      ODD_OPTIONS,
    );
    await until('a tile done', async () => ((await client.get(id)).progress.done > 0 ? true : undefined));
    await cluster.api.kill();
    await t.throwsAsync(client.get(id), { message: /fetch failed/ }, 'the api is down');
    cluster.api = await startApi(cluster.redis.url, cluster.blobs, ['--log-level', 'warn'], cluster.api.port);
    const [job] = (await client.list()).jobs;
    t.is(job?.id, id, 'the job survived the restart');
    t.true(job!.state === 'running' || job!.state === 'done', job!.state);
    const final = await client.wait(id);
    t.is(final.state, 'done');
    const expected = await localBytes(inputs);
    await client.result(id, 'out', join(inputs.dir, 'api-out.npy'));
    t.true(readFileSync(join(inputs.dir, 'api-out.npy')).equals(expected.out), 'O bit-identical to runLocal');
  } finally {
    await cluster.close();
    inputs.cleanup();
  }
});
