/**
 * Issue 14.8: a stray tile job naming another live job is rejected by workers (its id or ranges
 * do not fit that job's plan) and does not fail the real job.
 */
import test from 'ava';
import { Queue } from 'bullmq';
import { QUEUE_PREFIX, QUEUES, QueueEngine } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { localBytes, oddInputs, startService, until, type Service } from './support.ts';

test('stray tile jobs naming a live job (ids or ranges not in its plan) are rejected; the job finishes, bit-identical', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const services: Service[] = [];
  const tiles = new Queue(QUEUES.tiles, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
  try {
    const local = await localBytes(inputs);
    const engine = await QueueEngine.connect(redis.url);
    const request = inputs.request('queue');
    const { manifest, output } = await engine.submit(request, { tilesPerJob: 4, createOutput: true });
    const id = manifest.id;
    const strays = [
      { name: 'tile', data: { job: id, tiles: [[9999, 0, 1]] }, opts: { jobId: `${id}-t9999` } }, // beyond its tile jobs and its plan
      { name: 'tile', data: { job: id, tiles: [[0, 0, 1]] }, opts: { jobId: 'stray-1' } }, // a range of its plan, a foreign id
      { name: 'tile', data: { job: id, tiles: [[0, 5, 2]] }, opts: { jobId: `${id}-tx` } }, // an empty, reversed range
      { name: 'tile', data: { job: id, tiles: 'all' }, opts: { jobId: 'stray-2' } },
    ];
    await tiles.addBulk(strays);
    services.push(await startService('reducer', redis.url), await startService('worker', redis.url, ['--backend', 'js']));
    const status = await engine.wait(id);
    await engine.download(id, output!);
    t.true(inputs.read(request.out).equals(local.out), 'O');
    t.true(inputs.read(request.lse!).equals(local.lse), 'LSE');
    t.is(status.state, 'done');
    t.is(status.error, undefined);
    await until('the strays to be rejected', async () => {
      const states = await Promise.all(strays.map((s) => tiles.getJobState(s.opts.jobId)));
      return states.every((s) => s === 'failed') ? states : undefined;
    });
    const failed = await Promise.all(strays.map(async (s) => (await tiles.getJob(s.opts.jobId))!.failedReason));
    for (const reason of failed) t.regex(reason, /^tile job \S+ is not part of job la-\S+: /);
    t.is(await tiles.getJob('stray-1').then((j) => j!.attemptsMade), 1, 'not retried');
    await engine.remove(id);
    await engine.close();
  } finally {
    await tiles.close();
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
    inputs.cleanup();
  }
});
