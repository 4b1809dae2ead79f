import { existsSync, readdirSync } from 'node:fs';
import test from 'ava';
import { connectRedis, QueueEngine, runQueue } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { oddInputs } from './support.ts';

test('aborting runQueue cancels the job: rejected, no output, its blobs and flow gone, status says cancelled', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const client = connectRedis(redis.url);
  try {
    const request = inputs.request('queue');
    const abort = new AbortController();
    // No workers: the job waits until the abort.
    const running = runQueue(request, { redis: redis.url, signal: abort.signal, tilesPerJob: 2 });
    const ids = async () => (await client.keys('{longattn}:job:*')).filter((k) => !/:(reduced|records)$/.test(k));
    while ((await ids()).length === 0 || (await client.llen('bull:{longattn}:tiles:wait')) === 0)
      await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await t.throwsAsync(running, { message: /^job la-\S+ cancelled$/ });
    t.false(existsSync(request.out));
    t.deepEqual(readdirSync(inputs.dir).sort(), ['k.npy', 'q.npy', 'v.npy']);
    t.deepEqual(await client.keys('longattn:blob:*'), [], 'blobs deleted');
    t.is(await client.llen('bull:{longattn}:tiles:wait'), 0, 'tile jobs removed');
    const [key] = await ids();
    const engine = await QueueEngine.connect(redis.url);
    t.is((await engine.status(key!.slice('{longattn}:job:'.length))).state, 'cancelled');
    await engine.close();
  } finally {
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});
