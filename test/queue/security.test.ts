/**
 * Issue 14.7 / 14.12: nothing read back from Redis or typed by a user becomes a path or a key
 * unchecked. Real redis-server, real CLI and reducer processes.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { Queue } from 'bullmq';
import { connectRedis, FsBlobStore, QUEUE_PREFIX, QUEUES, runQueue } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { longattn, tempDir } from '../support/cli.ts';
import { oddInputs, startService, until, type Service } from './support.ts';

/** A manifest as an attacker would plant it: well-formed, its blobs in a directory of theirs. */
function plantedManifest(id: string, blobs: string): string {
  return JSON.stringify({
    version: 1,
    id,
    spec: { layout: 'bhsd', B: 1, H: 1, Hk: 1, Sq: 8, Sk: 8, D: 4, causal: false, window: { left: -1, right: -1 }, scale: 0.5 },
    qShape: [8, 4],
    blockQ: 8,
    blockK: 8,
    backend: 'js',
    blobs,
    tileCount: 1,
    skippedTiles: 0,
    qBlockCount: 1,
    flops: 1,
    tileJobs: 1,
    reduceJobs: 1,
  });
}

/** A victim tree: files that must survive. */
function victimTree(root: string, id: string): string[] {
  const files = [join(root, id, 'in', 'q'), join(root, id, 'p', '0.0'), join(root, 'victim', 'keep.txt')];
  for (const f of files) {
    mkdirSync(join(f, '..'), { recursive: true });
    writeFileSync(f, 'precious');
  }
  return files;
}

test('status/cancel/result refuse non-ids (planted `victim`, `J:reduced`, 100 KB): exit 2, one short line, nothing deleted', async (t) => {
  const redis = await startRedis();
  const client = connectRedis(redis.url);
  const victim = tempDir('longattn-victim-');
  try {
    const files = victimTree(victim, 'la-1-ab');
    await client.hset('{longattn}:job:victim', 'manifest', plantedManifest('victim', `fs:${victim}`), 'state', 'queued');
    const cancel = await longattn(['cancel', 'victim', '--redis', redis.url]);
    t.is(cancel.code, 2, cancel.stderr);
    t.regex(cancel.stderr, /^longattn: JOB: expected a job id like la-\S+, got "victim"\n$/);
    await client.sadd('{longattn}:job:J:reduced', '1');
    for (const command of ['status', 'cancel', 'result']) {
      const extra = command === 'result' ? ['--out', join(victim, 'o.npy')] : [];
      const r = await longattn([command, 'J:reduced', '--redis', redis.url, ...extra]);
      t.is(r.code, 2, `${command}: ${r.stderr}`);
      t.regex(r.stderr, /^longattn: JOB: expected a job id/);
    }
    const huge = `la-${'a'.repeat(100_000)}`;
    const long = await longattn(['status', huge, '--redis', redis.url]);
    t.is(long.code, 2);
    t.true(long.stderr.length < 300, `the id is not echoed whole (${long.stderr.length} characters)`);
    t.regex(long.stderr, /… \(100003 characters\)/);
    t.true(
      files.every((f) => existsSync(f)),
      'the victim tree is intact',
    );
  } finally {
    client.disconnect();
    await redis.close();
  }
});

test('a planted record naming a foreign blob store: cancel refuses (exit 2, --blobs), a planted finalise touches nothing', async (t) => {
  const redis = await startRedis();
  const client = connectRedis(redis.url);
  const victim = tempDir('longattn-victim-');
  const services: Service[] = [];
  const jobs = new Queue(QUEUES.jobs, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
  try {
    const id = 'la-1-ab';
    const files = victimTree(victim, id);
    const hash = `{longattn}:job:${id}`;
    await client.hset(hash, 'manifest', plantedManifest(id, `fs:${victim}`), 'state', 'queued');
    const cancel = await longattn(['cancel', id, '--redis', redis.url]);
    t.is(cancel.code, 2, cancel.stderr);
    t.regex(cancel.stderr, /^longattn: --blobs: job la-1-ab keeps its bytes in "fs:\/\S+", which this process was not given/);
    t.is(await client.hget(hash, 'state'), 'queued', 'refused before anything changed');

    // A finalise job naming it, as if its flow had finished; the reducer was given only its own Redis.
    await client.sadd(`{longattn}:job:${id}:reduced`, '0');
    services.push(await startService('reducer', redis.url));
    await jobs.add('finalise', { job: id }, { jobId: id });
    await until('the reducer to decline it', async () => ((await client.hkeys(hash)).some((f) => f.startsWith('d:')) ? true : undefined));
    const status = await longattn(['status', id, '--redis', redis.url]);
    t.regex(status.stdout, /waiting: needs backend js; declined by 1 worker \(reducer-\S+: job la-1-ab keeps its bytes in "fs:/);
    t.true(
      files.every((f) => existsSync(f)),
      'nothing deleted',
    );
    t.false(existsSync(join(victim, id, 'out')), 'nothing written');
    t.is(await client.hget(hash, 'state'), 'queued');

    // A record that is not a manifest this build wrote: status says so (exit 1), workers refuse it.
    await client.hset(hash, 'manifest', plantedManifest(id, `fs:${victim}`).replace('"Sq":8', '"Sq":1e15'));
    const bad = await longattn(['status', id, '--redis', redis.url]);
    t.is(bad.code, 1);
    t.regex(bad.stderr, /^longattn: job la-1-ab: its record in Redis is not a valid manifest \(field spec\.Sq: "1000000000000000"\)\n$/);
  } finally {
    await jobs.close();
    await Promise.all(services.map((s) => s.kill()));
    client.disconnect();
    await redis.close();
  }
});

test('the fs store refuses names outside its root; --blobs fs:<a file> exits 2 naming --blobs, nothing created', async (t) => {
  const dir = tempDir('longattn-fsroot-');
  const store = new FsBlobStore(join(dir, 'root'));
  for (const name of ['../x', '/etc/passwd', 'a/../../x', '.hidden', 'a//b']) {
    await t.throwsAsync(store.write(name, 0, new Uint8Array(4)), { instanceOf: RangeError }, name);
  }
  await t.throwsAsync(store.deletePrefix('../'), { instanceOf: RangeError });
  t.deepEqual(readdirSync(dir), [], 'nothing was created');

  const redis = await startRedis();
  const inputs = oddInputs();
  try {
    const file = join(inputs.dir, 'q.npy');
    const request = inputs.request('enotdir');
    await t.throwsAsync(runQueue(request, { redis: redis.url, blobs: `fs:${file}` }), {
      message: /^--blobs: cannot keep blobs in fs:\S+: (EEXIST|ENOTDIR)$/,
    });
    const r = await longattn([
      'run',
      '--q',
      request.q,
      '--k',
      request.k,
      '--v',
      request.v,
      '--out',
      request.out,
      '--engine',
      'queue',
      '--redis',
      redis.url,
      '--blobs',
      `fs:${file}/sub`,
    ]);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /^longattn: --blobs: cannot keep blobs in fs:\S+: ENOTDIR\n$/);
    t.false(existsSync(request.out));
    const client = connectRedis(redis.url);
    t.deepEqual(await client.keys('{longattn}:job:*'), [], 'no record left');
    client.disconnect();
  } finally {
    await redis.close();
    inputs.cleanup();
  }
});
