import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { connectRedis, jobKeys, queueKey, QueueEngine, runQueue } from '@longattn/engine/queue';
import { freePort, startRedis } from '../../scripts/redis-test-server.ts';
import { localBytes, oddInputs, startService, until, type Service } from './support.ts';

/** Submits through the engine API (so the test knows the job id), and collects the result. */
async function submit(redis: string, request: Parameters<QueueEngine['submit']>[0], tilesPerJob: number, blobs?: string) {
  const engine = await QueueEngine.connect(redis);
  const { manifest, output } = await engine.submit(request, { tilesPerJob, createOutput: true, ...(blobs ? { blobs } : {}) });
  return {
    engine,
    id: manifest.id,
    /** Waits until done, downloads, returns the final status (read before the job is removed). */
    async finish() {
      const status = await engine.wait(manifest.id);
      await engine.download(manifest.id, output!);
      await engine.remove(manifest.id);
      await engine.close();
      return status;
    },
  };
}

test('a worker killed with SIGKILL mid-tile: its tiles are retried elsewhere, output bit-identical', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const services: Service[] = [];
  try {
    const local = await localBytes(inputs);
    services.push(await startService('reducer', redis.url));
    // The victim sleeps 2 s before each tile, so it is certainly mid-tile when killed.
    const victim = await startService('worker', redis.url, ['--backend', 'js', '--throttle-ms', '2000']);
    const request = inputs.request('queue');
    const job = await submit(redis.url, request, 4);
    await until('the victim to take a tile job', async () => ((await job.engine.status(job.id)).state === 'running' ? true : undefined));
    await victim.kill();
    services.push(await startService('worker', redis.url, ['--backend', 'js']));
    const status = await job.finish();
    t.true(inputs.read(request.out).equals(local.out), 'O');
    t.true(inputs.read(request.lse!).equals(local.lse), 'LSE');
    t.is(status.progress.doneTiles, status.progress.totalTiles);
    t.is(status.workers, 1, 'only the surviving worker stored partials');
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
    inputs.cleanup();
  }
});

test('a worker killed with SIGKILL after writing a whole q-block’s rows, before recording them: the retry rewrites them, bit-identical', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const blobs = join(inputs.dir, 'blobs');
  const services: Service[] = [];
  const client = connectRedis(redis.url);
  try {
    const local = await localBytes(inputs);
    services.push(await startService('reducer', redis.url, ['--blobs', `fs:${blobs}`]));
    // 8 tiles per job: every q-block whole, two per job (3+3, 4+4 tiles, then 5); the victim
    // sleeps 300 ms before each tile and after writing a job's rows (its two q-blocks, one run),
    // so it is killed with the rows written and not yet recorded.
    const victim = await startService('worker', redis.url, ['--backend', 'js', '--throttle-ms', '300', '--blobs', `fs:${blobs}`]);
    const request = inputs.request('queue');
    const job = await submit(redis.url, request, 8, `fs:${blobs}`);
    await until('the victim to write a first q-block’s rows', async () =>
      existsSync(join(blobs, job.id, 'out', 'o.building')) ? true : undefined,
    );
    await victim.kill();
    t.is(await client.scard(jobKeys.reduced(job.id)), 0, 'killed before it recorded any q-block');
    services.push(await startService('worker', redis.url, ['--backend', 'js', '--blobs', `fs:${blobs}`]));
    const status = await job.finish();
    t.true(inputs.read(request.out).equals(local.out), 'O');
    t.true(inputs.read(request.lse!).equals(local.lse), 'LSE');
    t.is(status.workers, 1, 'only the surviving worker recorded work');
    t.is(status.computedTiles, status.progress.totalTiles);
    t.is(status.progress.doneTiles, status.progress.totalTiles);
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});

test('a reducer killed with SIGKILL mid-merge: the reduce job is retried, output bit-identical', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const services: Service[] = [];
  const client = connectRedis(redis.url);
  try {
    const local = await localBytes(inputs);
    // --no-merge: the worker leaves every split q-block to the reducer (by default the tile job
    // storing a q-block's last partials merges it, and reduce jobs find nothing to merge).
    services.push(await startService('worker', redis.url, ['--backend', 'js', '--no-merge']));
    // The victim sleeps 1 s before each q-block merge: killed while a reduce job is active,
    // after another one finished.
    const victim = await startService('reducer', redis.url, ['--throttle-ms', '1000']);
    const request = inputs.request('queue');
    const job = await submit(redis.url, request, 1);
    await until('a first reduce job to finish', async () => ((await client.scard(jobKeys.reduced(job.id))) >= 1 ? true : undefined));
    await until('a reduce job in progress', async () => ((await client.llen(queueKey('reduce', 'active'))) >= 1 ? true : undefined));
    await victim.kill();
    services.push(await startService('reducer', redis.url));
    await job.finish();
    t.true(inputs.read(request.out).equals(local.out), 'O');
    t.true(inputs.read(request.lse!).equals(local.lse), 'LSE');
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});

test('Redis restarted mid-job (AOF on): the job resumes, finished tiles are not recomputed, output bit-identical', async (t) => {
  const redis = await startRedis({ aof: true });
  const inputs = oddInputs();
  const services: Service[] = [];
  try {
    const local = await localBytes(inputs);
    services.push(
      await startService('reducer', redis.url),
      await startService('worker', redis.url, ['--backend', 'js', '--throttle-ms', '40']),
      await startService('worker', redis.url, ['--backend', 'js', '--throttle-ms', '40']),
    );
    const request = inputs.request('queue');
    const job = await submit(redis.url, request, 1);
    const before = await until('a quarter of the tiles', async () => {
      const { progress } = await job.engine.status(job.id);
      return progress.doneTiles >= progress.totalTiles / 4 ? progress.doneTiles : undefined;
    });
    await redis.restart();
    const status = await job.finish();
    t.true(before < status.progress.totalTiles, 'the restart happened mid-job');
    t.true(inputs.read(request.out).equals(local.out), 'O');
    t.true(inputs.read(request.lse!).equals(local.lse), 'LSE');
    t.is(status.computedTiles, status.progress.totalTiles, 'every tile computed exactly once');
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
    inputs.cleanup();
  }
});

test('Redis unreachable at submit: one-line InputError naming --redis, nothing created', async (t) => {
  const inputs = oddInputs({ H: 1, Hk: 1, Sq: 8, Sk: 8, D: 4 });
  try {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const request = inputs.request('queue');
    const error = await t.throwsAsync(runQueue(request, { redis: url }));
    t.is(error?.name, 'InputError');
    t.regex(error!.message, /^--redis: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: .+$/);
    t.false(error!.message.includes('\n'));
    t.false(existsSync(request.out));
    t.deepEqual(readdirSync(inputs.dir).sort(), ['k.npy', 'q.npy', 'v.npy'], 'no partial output files');
    await t.throwsAsync(runQueue(request, { redis: 'http://localhost:6379' }), { message: /^--redis: expected a redis:\/\// });
  } finally {
    inputs.cleanup();
  }
});

test('a tile that fails on every attempt fails the whole job (no parent waits forever): one-line error, no output', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs({ H: 1, Hk: 1, Sq: 40, Sk: 40, D: 8 });
  const blobs = join(inputs.dir, 'blobs');
  const services: Service[] = [];
  try {
    const request = inputs.request('queue', { blockQ: 16, blockK: 16 });
    const engine = await QueueEngine.connect(redis.url);
    const { manifest, output } = await engine.submit(request, { tilesPerJob: 2, blobs: `fs:${blobs}`, createOutput: true });
    // A file where the job's output directory goes: every attempt to write its rows fails (ENOTDIR/EEXIST).
    writeFileSync(join(blobs, manifest.id, 'out'), 'in the way');
    const given = ['--blobs', `fs:${blobs}`];
    services.push(await startService('reducer', redis.url, given), await startService('worker', redis.url, ['--backend', 'js', ...given]));
    const error = await t.throwsAsync(engine.wait(manifest.id));
    output!.abort();
    await engine.close();
    t.regex(error!.message, /^job la-\S+ failed: tile la-\S+-t\d+: .*(ENOTDIR|EEXIST)/);
    t.false(error!.message.includes('\n'));
    t.false(existsSync(request.out));
    t.deepEqual(readdirSync(inputs.dir).sort(), ['blobs', 'k.npy', 'q.npy', 'v.npy']);
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
    inputs.cleanup();
  }
});
