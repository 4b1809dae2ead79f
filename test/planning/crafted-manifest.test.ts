import test from 'ava';
import { connectRedis, encodeManifest, jobKeys, QueueEngine, runQueue } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { localBytes, oddInputs, startService, until } from '../queue/support.ts';

test('a crafted manifest with absurd blocks fails its job with a clear error; the worker lives on and runs the next job', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const client = connectRedis(redis.url);
  const engine = await QueueEngine.connect(redis.url);
  const services = [];
  try {
    // Queued jobs (no worker yet) whose manifests are then rewritten in Redis as an attacker could.
    const crafted: [string, RegExp][] = [];
    // (Blocks outside 1 … 2^20 never get this far: the manifest schema refuses the record itself,
    // without touching the job it names — test/queue/security.test.ts.)
    for (const [blockQ, blockK, why] of [
      [1 << 20, 1 << 20, /--block-k: tiles of 300×517 exceed the limit of 65536 rows×keys per tile/],
      [1, 1, /--block-k: 441000 tiles exceed the queue engine's limit of 2000 per job/],
    ] as const) {
      const { manifest } = await engine.submit(inputs.request(`crafted-${blockQ}`));
      await client.hset(jobKeys.hash(manifest.id), 'manifest', encodeManifest({ ...manifest, blockQ, blockK }));
      crafted.push([manifest.id, why]);
    }
    // The services' limits (from their environment, inherited), small enough for the odd shape to break them.
    process.env.LONGATTN_MAX_TILE_AREA = '65536';
    process.env.LONGATTN_MAX_JOB_TILES = '2000';
    const worker = await startService('worker', redis.url);
    services.push(worker, await startService('reducer', redis.url));
    for (const [id, why] of crafted) {
      const status = await until(`job ${id} failed`, async () => {
        const s = await engine.status(id);
        return s.state === 'failed' ? s : undefined;
      });
      t.regex(status.error ?? '', new RegExp(`job ${id}: its manifest is refused: ${why.source}`));
      t.is(status.error!.split('\n').length, 1, 'one line');
    }
    t.is(worker.child.exitCode, null, 'the worker is still running');
    t.is(worker.child.signalCode, null);
    // The same worker computes a good job, bit-identical to the local engine.
    const request = inputs.request('good');
    await runQueue(request, { redis: redis.url });
    const local = await localBytes(inputs);
    t.true(inputs.read(request.out).equals(local.out));
    t.true(inputs.read(request.lse!).equals(local.lse));
    t.is(worker.child.exitCode, null);
  } finally {
    await Promise.all(services.map((s) => s.stop()));
    await engine.close();
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});
