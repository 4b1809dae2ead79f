import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { connectRedis, jobKeys, QueueEngine } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { localBytes, oddInputs, startService, until, type Service } from './support.ts';

test('split q-blocks are merged by the tile job that stores their last partials: all reduced before any reducer runs, bit-identical', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const blobs = join(inputs.dir, 'blobs');
  const services: Service[] = [];
  const client = connectRedis(redis.url);
  const engine = await QueueEngine.connect(redis.url, { blobs: [`fs:${blobs}`] });
  try {
    const local = await localBytes(inputs);
    // Two workers and no reducer yet: one tile per job, so every q-block of more than one tile is
    // split across tile jobs (run by either worker), and only the workers can have merged them.
    services.push(
      await startService('worker', redis.url, ['--backend', 'js', '--blobs', `fs:${blobs}`]),
      await startService('worker', redis.url, ['--backend', 'js', '--blobs', `fs:${blobs}`]),
    );
    const request = inputs.request('queue');
    const { manifest, output } = await engine.submit(request, { tilesPerJob: 1, blobs: `fs:${blobs}`, createOutput: true });
    t.true(manifest.tileJobs > manifest.qBlockCount, 'some q-blocks are split');
    await until('every tile recorded', async () => {
      const { progress } = await engine.status(manifest.id);
      return progress.doneTiles === progress.totalTiles ? true : undefined;
    });
    await until('every q-block reduced by the workers', async () =>
      (await client.scard(jobKeys.reduced(manifest.id))) === manifest.qBlockCount ? true : undefined,
    );
    const fields = await client.hkeys(jobKeys.hash(manifest.id));
    t.deepEqual(
      fields.filter((f) => f.startsWith('s:')),
      [],
      'no split q-block left counting',
    );
    // A merge marks its q-block, then deletes its partials: the last deletes land just after the last mark.
    await until('every partial deleted once merged', async () =>
      readdirSync(join(blobs, manifest.id, 'p')).length === 0 ? true : undefined,
    );
    const runs = (await client.hkeys(jobKeys.hash(manifest.id))).filter((f) => f.startsWith('r:'));
    t.deepEqual(runs, [], 'no run list left once merged and marked');
    services.push(await startService('reducer', redis.url, ['--blobs', `fs:${blobs}`]));
    const status = await engine.wait(manifest.id);
    await engine.download(manifest.id, output!);
    t.true(inputs.read(request.out).equals(local.out), 'O');
    t.true(inputs.read(request.lse!).equals(local.lse), 'LSE');
    t.is(status.computedTiles, status.progress.totalTiles, 'every tile computed once');
    await engine.remove(manifest.id);
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await engine.close();
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});
