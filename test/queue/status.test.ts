import { join } from 'node:path';
import test from 'ava';
import { UnrecoverableError, Worker } from 'bullmq';
import { connectRedis, jobKeys, QUEUE_PREFIX, QUEUES, QueueEngine } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { oddInputs, startService, until, type Service } from './support.ts';

test('status: a root BullMQ failed while the job’s hash still says queued (its tiles failed unrecorded) reads as failed, with the root’s reason', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs({ H: 1, Hk: 1, Sq: 40, Sk: 40, D: 8 });
  const engine = await QueueEngine.connect(redis.url);
  const client = connectRedis(redis.url);
  // A bare BullMQ worker, not ours: it fails tile jobs without writing anything in the job's hash.
  const worker = new Worker(
    QUEUES.tiles,
    async () => {
      throw new UnrecoverableError('lost for good');
    },
    { connection: { url: redis.url, maxRetriesPerRequest: null }, prefix: QUEUE_PREFIX, autorun: false },
  );
  let reducer: Service | undefined;
  try {
    const blobs = `fs:${join(inputs.dir, 'blobs')}`;
    // A real reducer: BullMQ fails the reduce and root jobs as it hands them over, before any processor of ours runs.
    reducer = await startService('reducer', redis.url, ['--blobs', blobs]);
    const request = inputs.request('queue', { blockQ: 16, blockK: 16 });
    const { manifest } = await engine.submit(request, { tilesPerJob: 2, blobs });
    const before = await engine.status(manifest.id);
    t.is(before.state, 'queued');
    t.is(before.error, undefined);
    void worker.run();
    const status = await until('the root failed', async () => {
      const s = await engine.status(manifest.id);
      return s.state === 'failed' ? s : undefined;
    });
    t.is(await client.hget(jobKeys.hash(manifest.id), 'state'), 'queued', 'the hash never said failed');
    t.regex(status.error ?? '', /^child .*-r\d+ failed/, 'the root’s own failedReason (its reduce child failed)');
  } finally {
    await worker.close();
    await reducer?.kill();
    await engine.close();
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});
