/**
 * Issue 14.9: every key a job owns expires as documented (docs/limits.md), its blobs live as long
 * as its record (the reducers' sweep), and a cancel leaves nothing once in-flight tiles stopped.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { connectRedis, QUEUE_DEFAULTS, QueueEngine, runQueue } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { longattn } from '../support/cli.ts';
import { oddInputs, startService, until, type Service } from './support.ts';

const WEEK = 7 * 24 * 3600;

/** Every key of a job beside BullMQ's flow: record, sets, blobs. */
async function jobKeysOf(client: ReturnType<typeof connectRedis>, id: string): Promise<string[]> {
  return [...(await client.keys(`{longattn}:job:${id}*`)), ...(await client.keys(`longattn:blob:{${id}/*`))].sort();
}

test('a done job left uncollected: its record expires in 7 days, its result blobs go with it (sweep); a failed one likewise', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const client = connectRedis(redis.url);
  const services: Service[] = [];
  try {
    services.push(
      await startService('worker', redis.url, ['--backend', 'js']),
      await startService('reducer', redis.url, ['--sweep-ms', '300']),
    );
    const { jobId } = await runQueue(inputs.request('left'), { redis: redis.url, detach: true });
    await until(
      'the job to finish',
      async () => ((await client.hget(`{longattn}:job:${jobId}`, 'state')) === 'done' ? true : undefined),
      120_000,
    );
    const ttl = await client.ttl(`{longattn}:job:${jobId}`);
    t.true(ttl > WEEK - 60 && ttl <= WEEK, `record TTL ${ttl} s`);
    t.is(QUEUE_DEFAULTS.keepFinishedSeconds, WEEK);
    const keys = await jobKeysOf(client, jobId);
    t.deepEqual(
      keys.filter((k) => k.startsWith('{longattn}')),
      [`{longattn}:job:${jobId}`],
      'sets deleted at finalise',
    );
    t.true(
      keys.some((k) => k.includes('/out/o}')),
      'the result is kept for `result`',
    );
    // Seven days later (the record expires): the reducers' sweep deletes the blobs.
    await client.del(`{longattn}:job:${jobId}`);
    await until('the sweep', async () => ((await jobKeysOf(client, jobId)).length === 0 ? true : undefined), 30_000);
    // The reducer logs the sweep once its deletes have returned: the line may trail the keys' end by a moment.
    const swept = /swept the blobs of 1 expired, failed or cancelled job/;
    await until('the sweep logged', async () => (swept.test(services[1]!.log()) ? true : undefined), 10_000).catch(() => {});
    t.regex(services[1]!.log(), swept);
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});

test('a failed job: record expires in 7 days, its fs blobs are swept at once; names that are not job ids are left alone', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs({ H: 1, Hk: 1, Sq: 40, Sk: 40, D: 8 });
  const blobs = join(inputs.dir, 'blobs');
  const client = connectRedis(redis.url);
  const services: Service[] = [];
  try {
    mkdirSync(join(blobs, 'not-a-job'), { recursive: true });
    writeFileSync(join(blobs, 'not-a-job', 'keep'), 'x');
    mkdirSync(join(blobs, 'la-9-ff', 'in'), { recursive: true }); // a job whose record is long gone
    writeFileSync(join(blobs, 'la-9-ff', 'in', 'q'), 'x');
    const engine = await QueueEngine.connect(redis.url);
    const { manifest } = await engine.submit(inputs.request('fails', { blockQ: 16, blockK: 16 }), { tilesPerJob: 2, blobs: `fs:${blobs}` });
    writeFileSync(join(blobs, manifest.id, 'out'), 'in the way'); // every attempt fails (see faults.test.ts)
    const given = ['--blobs', `fs:${blobs}`];
    services.push(
      await startService('worker', redis.url, ['--backend', 'js', ...given]),
      await startService('reducer', redis.url, [...given, '--sweep-ms', '300']),
    );
    await t.throwsAsync(engine.wait(manifest.id), { message: /failed/ });
    await engine.close();
    const ttl = await client.ttl(`{longattn}:job:${manifest.id}`);
    t.true(ttl > WEEK - 60 && ttl <= WEEK, `record TTL ${ttl} s`);
    await until('the sweep', async () => (readdirSync(blobs).sort().join() === 'not-a-job' ? true : undefined), 30_000);
    t.true(existsSync(join(blobs, 'not-a-job', 'keep')));
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});

test('cancelling a running job: once its in-flight tiles stop, nothing of it is left but its expiring record', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const client = connectRedis(redis.url);
  const services: Service[] = [];
  try {
    // Slow tiles (1.5 s each, 2 jobs at a time): the cancel lands while tiles are computing and writing.
    const worker = await startService('worker', redis.url, ['--backend', 'js', '--throttle-ms', '1500']);
    services.push(worker, await startService('reducer', redis.url));
    const { jobId } = await runQueue(inputs.request('cancelled'), { redis: redis.url, detach: true, tilesPerJob: 3 });
    await until('a tile job to start', async () => ((await client.hexists(`{longattn}:job:${jobId}`, 'startedAt')) ? true : undefined));
    const cancel = await longattn(['cancel', jobId, '--redis', redis.url]);
    t.is(cancel.code, 0, cancel.stderr);
    t.regex(cancel.stdout, /cancelled \(was running\)/);
    const onlyRecord = [`{longattn}:job:${jobId}`];
    await until(
      'nothing but the record to be left',
      async () => {
        const keys = await jobKeysOf(client, jobId);
        return keys.join() === onlyRecord.join() ? true : undefined;
      },
      60_000,
    );
    // Tiles that were in flight (up to 2 jobs × 3 tiles × 1.5 s) end meanwhile: what they wrote is gone too.
    await new Promise((r) => setTimeout(r, 10_000));
    t.deepEqual(await jobKeysOf(client, jobId), onlyRecord, 'no blob, no set left');
    const ttl = await client.ttl(`{longattn}:job:${jobId}`);
    t.true(ttl > WEEK - 60 && ttl <= WEEK, `record TTL ${ttl} s`);
    // Its flow is gone; at most the in-flight jobs' BullMQ locks remain, and they expire within lockDuration.
    for (const key of (await client.keys('bull:{longattn}:*')).filter((k) => k.includes(jobId))) {
      t.regex(key, /:lock$/);
      const pttl = await client.pttl(key);
      t.true(pttl > 0 && pttl <= QUEUE_DEFAULTS.lockDurationMs, `${key} expires (${pttl} ms)`);
    }
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});
