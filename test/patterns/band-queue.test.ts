import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runLocal } from '@longattn/engine';
import { runQueue } from '@longattn/engine/queue';
import { readTensor, writeTensor } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { randomTensor } from '../support/random.ts';
import { bruteWithBound, exactness } from '../support/reference64.ts';
import { startService, type Service } from '../queue/support.ts';

/**
 * Band tiles (docs/math.md, "Band tiles") on the queue engine with ort: workers plan the same band
 * tiles from the manifest and run them through ort's band call; the q-blocks around them (global
 * rows, the sequence's ends) split across tile jobs as partial blobs. Bits equal runLocal's, exact.
 */
test.serial('queue engine, ort: band tiles and split q-blocks — bits equal runLocal (2 threads), exact vs float64', async (t) => {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'longattn-band-queue-'));
  const services: Service[] = [];
  try {
    const [H, Hk, Sq, Sk, D] = [2, 1, 700, 721, 5];
    const q = randomTensor(H * Sq * D, 51);
    const k = randomTensor(Hk * Sk * D, 52);
    const v = randomTensor(Hk * Sk * D, 53);
    writeTensor(join(dir, 'q.npy'), [H, Sq, D], q);
    writeTensor(join(dir, 'k.npy'), [Hk, Sk, D], k);
    writeTensor(join(dir, 'v.npy'), [Hk, Sk, D], v);
    const base = {
      q: join(dir, 'q.npy'),
      k: join(dir, 'k.npy'),
      v: join(dir, 'v.npy'),
      options: { causal: false, window: { left: 20, right: 13 }, pattern: { global: [0, 1, 2, 300] } },
      backend: 'ort',
      blockQ: 128,
    };
    // blockK 64: no band (a band here needs 3 + 1 + 160 keys), q-blocks of several tiles split across jobs; 512: band tiles.
    for (const blockK of [64, 512]) {
      const local = { ...base, blockK, out: join(dir, `local-${blockK}.npy`), lse: join(dir, `local-${blockK}-lse.npy`) };
      const queued = { ...base, blockK, out: join(dir, `queue-${blockK}.npy`), lse: join(dir, `queue-${blockK}-lse.npy`) };
      await runLocal(local, { threads: 2 });
      if (services.length === 0)
        services.push(
          await startService('reducer', redis.url),
          await startService('worker', redis.url, ['--backend', 'ort']),
          await startService('worker', redis.url, ['--backend', 'ort']),
        );
      await runQueue(queued, { redis: redis.url, tilesPerJob: 3 });
      t.true(readFileSync(queued.out).equals(readFileSync(local.out)), `O, blockK ${blockK}`);
      t.true(readFileSync(queued.lse).equals(readFileSync(local.lse)), `LSE, blockK ${blockK}`);
      const want = bruteWithBound(
        { layout: 'bhsd', B: 1, H, Hk, Sq, Sk, D, causal: false, window: [20, 13], global: [0, 1, 2, 300] },
        q,
        k,
        v,
      );
      const got = exactness({ out: readTensor(queued.out).data, lse: readTensor(queued.lse).data }, want);
      t.true(got.exact, `blockK ${blockK}: err ${got.err} (bound ${want.bound}), lse err ${got.lseErr}`);
    }
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial(
  'queue engine, ort: band tiles (causal window + sinks) — O bits equal runLocal’s without --lse (o-only sole tiles) and with it, LSE runLocal’s; exact',
  async (t) => {
    const redis = await startRedis();
    const dir = mkdtempSync(join(tmpdir(), 'longattn-band-queue-sole-'));
    const services: Service[] = [];
    try {
      const [H, Sq, Sk, D] = [2, 900, 933, 6];
      const q = randomTensor(H * Sq * D, 71, 2);
      const k = randomTensor(Sk * D, 72, 2);
      const v = randomTensor(Sk * D, 73);
      writeTensor(join(dir, 'q.npy'), [H, Sq, D], q);
      writeTensor(join(dir, 'k.npy'), [1, Sk, D], k);
      writeTensor(join(dir, 'v.npy'), [1, Sk, D], v);
      const base = {
        q: join(dir, 'q.npy'),
        k: join(dir, 'k.npy'),
        v: join(dir, 'v.npy'),
        options: { causal: true, window: { left: 100, right: 0 }, pattern: { sinks: 3 } },
        backend: 'ort',
        blockQ: 128,
        blockK: 512,
      };
      await runLocal({ ...base, out: join(dir, 'local.npy') }, { threads: 2 });
      await runLocal({ ...base, out: join(dir, 'local-lse.npy'), lse: join(dir, 'local-lse-lse.npy') }, { threads: 2 });
      services.push(
        await startService('reducer', redis.url),
        await startService('worker', redis.url, ['--backend', 'ort']),
        await startService('worker', redis.url, ['--backend', 'ort']),
      );
      const queued = { ...base, out: join(dir, 'queue.npy'), lse: join(dir, 'queue-lse.npy') };
      await runQueue(queued, { redis: redis.url, tilesPerJob: 3 });
      t.true(readFileSync(queued.out).equals(readFileSync(join(dir, 'local.npy'))), 'O = runLocal without --lse');
      t.true(readFileSync(queued.out).equals(readFileSync(join(dir, 'local-lse.npy'))), 'O = runLocal with --lse');
      t.true(readFileSync(queued.lse).equals(readFileSync(join(dir, 'local-lse-lse.npy'))), 'LSE');
      const want = bruteWithBound({ layout: 'bhsd', B: 1, H, Hk: 1, Sq, Sk, D, causal: true, window: [100, 0], sinks: 3 }, q, k, v);
      const got = exactness({ out: readTensor(queued.out).data, lse: readTensor(queued.lse).data }, want);
      t.true(got.exact, `err ${got.err} (bound ${want.bound}), lse err ${got.lseErr}`);
    } finally {
      await Promise.all(services.map((s) => s.kill()));
      await redis.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test.serial(
  'queue engine, js workers (no band path): band tiles run as their parts, whose key runs the workers prefetch too — bits equal runLocal’s, exact',
  async (t) => {
    const redis = await startRedis();
    const dir = mkdtempSync(join(tmpdir(), 'longattn-band-queue-js-'));
    const services: Service[] = [];
    try {
      const [H, Sq, Sk, D] = [1, 1400, 1421, 5];
      const q = randomTensor(H * Sq * D, 81);
      const k = randomTensor(Sk * D, 82);
      const v = randomTensor(Sk * D, 83);
      writeTensor(join(dir, 'q.npy'), [H, Sq, D], q);
      writeTensor(join(dir, 'k.npy'), [1, Sk, D], k);
      writeTensor(join(dir, 'v.npy'), [1, Sk, D], v);
      // Bands of 3 + 127 + 171 keys: their parts (the window's core mask-free, its edges masked) are other key runs,
      // and a band straddling an aligned key block reads them from blocks the band's own run does not name.
      const base = {
        q: join(dir, 'q.npy'),
        k: join(dir, 'k.npy'),
        v: join(dir, 'v.npy'),
        options: { causal: false, window: { left: 150, right: 20 }, pattern: { global: [0, 1, 2] } },
        backend: 'js',
        blockQ: 128,
        blockK: 512,
      };
      const local = { ...base, out: join(dir, 'local.npy'), lse: join(dir, 'local-lse.npy') };
      await runLocal(local, { threads: 2 });
      services.push(await startService('reducer', redis.url), await startService('worker', redis.url, ['--backend', 'js']));
      const queued = { ...base, out: join(dir, 'queue.npy'), lse: join(dir, 'queue-lse.npy') };
      await runQueue(queued, { redis: redis.url, tilesPerJob: 3 });
      t.true(readFileSync(queued.out).equals(readFileSync(local.out)), 'O');
      t.true(readFileSync(queued.lse).equals(readFileSync(local.lse)), 'LSE');
      const want = bruteWithBound(
        { layout: 'bhsd', B: 1, H, Hk: 1, Sq, Sk, D, causal: false, window: [150, 20], global: [0, 1, 2] },
        q,
        k,
        v,
      );
      const got = exactness({ out: readTensor(queued.out).data, lse: readTensor(queued.lse).data }, want);
      t.true(got.exact, `err ${got.err} (bound ${want.bound}), lse err ${got.lseErr}`);
    } finally {
      await Promise.all(services.map((s) => s.kill()));
      await redis.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
