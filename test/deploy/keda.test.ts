import test from 'ava';
import { connectRedis, queueKey, QueueEngine } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { oddInputs } from '../queue/support.ts';
import { readK8s } from './support.ts';

test('KEDA scales workers on the tiles queue’s wait list: the key the code builds, a LIST whose length is the waiting tile jobs', async (t) => {
  const docs = readK8s(['worker-scaler.yaml', 'worker.yaml', 'redis.yaml']);
  const scaler = docs.find((d) => d.kind === 'ScaledObject')!;
  const trigger = scaler.spec.triggers[0];
  t.is(trigger.type, 'redis');
  t.is(trigger.metadata.listName, queueKey('tiles', 'wait'));
  t.is(scaler.spec.scaleTargetRef.name, docs.find((d) => d.kind === 'Deployment')!.metadata.name);
  const service = docs.find((d) => d.kind === 'Service')!;
  t.is(trigger.metadata.address, `${service.metadata.name}:${service.spec.ports[0].port}`);

  // Against real BullMQ: submit a job with no workers; the list holds exactly its tile jobs.
  const redis = await startRedis();
  const inputs = oddInputs();
  const client = connectRedis(redis.url);
  const engine = await QueueEngine.connect(redis.url);
  try {
    const { manifest } = await engine.submit(inputs.request('queue'), { tilesPerJob: 3 });
    t.is(await client.type(trigger.metadata.listName), 'list');
    t.is(await client.llen(trigger.metadata.listName), manifest.tileJobs);
    t.true(manifest.tileJobs > 1);
    await engine.cancel(manifest.id);
    t.is(await client.llen(trigger.metadata.listName), 0, 'cancel empties it');
  } finally {
    await engine.close();
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});
