import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runLocal } from '@longattn/engine';
import { connectRedis, runQueue } from '@longattn/engine/queue';
import { writeTensor } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { randomTensor } from '../support/random.ts';
import { localBytes, oddInputs, startService, type Service } from './support.ts';

test('queue output is bit-identical to runLocal with 1, 2 and 3 worker processes, split or whole q-blocks, and leaves nothing behind', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const services: Service[] = [];
  const client = connectRedis(redis.url);
  try {
    const local = await localBytes(inputs);
    services.push(await startService('reducer', redis.url));
    for (const n of [1, 2, 3]) {
      services.push(await startService('worker', redis.url, ['--backend', 'js']));
      // One tile per job: every q-block split, its partials merged by the reducer; the most jobs,
      // the most interleaving between workers. Four: q-blocks of ≤ 4 tiles whole (merged and
      // written by the worker), 5-tile ones split.
      for (const tilesPerJob of [1, 4]) {
        const request = inputs.request(`queue-${n}-${tilesPerJob}`);
        const result = await runQueue(request, { redis: redis.url, tilesPerJob });
        t.true(inputs.read(request.out).equals(local.out), `O with ${n} workers, ${tilesPerJob} tiles per job`);
        t.true(inputs.read(request.lse!).equals(local.lse), `LSE with ${n} workers, ${tilesPerJob} tiles per job`);
        t.is(result.engine, 'queue');
        t.is(result.backend, 'js');
        t.true(result.threads >= 1 && result.threads <= n, `${result.threads} workers took part`);
      }
    }
    // Everything of the jobs is gone: no blobs, no records; only BullMQ's per-queue bookkeeping.
    const left = (await client.keys('*')).filter(
      (k) => !/^bull:\{longattn\}:(tiles|reduce|jobs):(meta|id|events|stalled-check|marker)$/.test(k),
    );
    t.deepEqual(left, []);
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});

test('bshd, a sliding window, GQA, B=2 and the fs blob store: bit-identical too (2 workers, default batching)', async (t) => {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'longattn-queue-bshd-'));
  const services: Service[] = [];
  try {
    const [B, H, Hk, Sq, Sk, D] = [2, 3, 1, 131, 190, 20];
    writeTensor(join(dir, 'q.npy'), [B, Sq, H, D], randomTensor(B * Sq * H * D, 31));
    writeTensor(join(dir, 'k.npy'), [B, Sk, Hk, D], randomTensor(B * Sk * Hk * D, 32));
    writeTensor(join(dir, 'v.npy'), [B, Sk, Hk, D], randomTensor(B * Sk * Hk * D, 33));
    const base = {
      q: join(dir, 'q.npy'),
      k: join(dir, 'k.npy'),
      v: join(dir, 'v.npy'),
      options: { layout: 'bshd' as const, window: { left: 40, right: 3 } },
      backend: 'js',
      blockQ: 32,
      blockK: 48,
    };
    const local = { ...base, out: join(dir, 'local.npy'), lse: join(dir, 'local-lse.npy') };
    const queued = { ...base, out: join(dir, 'queue.npy'), lse: join(dir, 'queue-lse.npy') };
    await runLocal(local, { threads: 2 });
    const blobs = ['--blobs', `fs:${join(dir, 'blobs')}`]; // services open only the stores they are given
    services.push(
      await startService('reducer', redis.url, blobs),
      await startService('worker', redis.url, ['--backend', 'js', ...blobs]),
      await startService('worker', redis.url, ['--backend', 'js', ...blobs]),
    );
    const result = await runQueue(queued, { redis: redis.url, blobs: `fs:${join(dir, 'blobs')}` });
    t.true(readFileSync(queued.out).equals(readFileSync(local.out)), 'O');
    t.true(readFileSync(queued.lse).equals(readFileSync(local.lse)), 'LSE');
    t.is(result.shape.B, 2);
    t.deepEqual(readdirSync(join(dir, 'blobs')), [], 'the job’s blobs were removed');
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
