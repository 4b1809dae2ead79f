import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runLocal, type JobRequest } from '@longattn/engine';
import { runQueue } from '@longattn/engine/queue';
import { readTensor, writeTensor } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { randomTensor } from '../support/random.ts';
import { bruteWithBound, exactness } from '../support/reference64.ts';
import { startService, type Service } from '../queue/support.ts';

/** A case: its shapes (bhsd, B 1), inputs (randomTensor seeds, scales: 1 when absent), options, and the backend and count of its workers. */
interface BandCase {
  shape: { H: number; Hk: number; Sq: number; Sk: number; D: number };
  seeds: [q: number, k: number, v: number];
  scales?: [q: number, k: number, v: number];
  options: { causal: boolean; window: { left: number; right: number }; pattern: { sinks?: number; global?: number[] } };
  backend: 'ort' | 'js';
  workers: number;
  blockK?: number;
}

interface BandQueue {
  /** A request on the case's inputs (blockQ 128) writing NAME.npy, and NAME-lse.npy unless `lse` is false. */
  request(name: string, extra?: { lse?: boolean; blockK?: number }): JobRequest;
  /** Runs a request on the queue engine, 3 tiles a job; the reducer and the case's workers start on the first call. */
  queue(request: JobRequest): Promise<void>;
  /** A request's O and LSE files against the float64 attention of the case's definition (exactness rule). */
  exact(request: JobRequest): { exact: boolean; message: string };
}

/** Runs `body` on a case with its own Redis, temp dir and services; tears them all down after. */
async function withBandQueue(c: BandCase, body: (w: BandQueue) => Promise<void>): Promise<void> {
  const { H, Hk, Sq, Sk, D } = c.shape;
  const [sq, sk, sv] = c.scales ?? [1, 1, 1];
  const q = randomTensor(H * Sq * D, c.seeds[0], sq);
  const k = randomTensor(Hk * Sk * D, c.seeds[1], sk);
  const v = randomTensor(Hk * Sk * D, c.seeds[2], sv);
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'longattn-band-queue-'));
  const services: Service[] = [];
  let want: ReturnType<typeof bruteWithBound> | undefined;
  try {
    writeTensor(join(dir, 'q.npy'), [H, Sq, D], q);
    writeTensor(join(dir, 'k.npy'), [Hk, Sk, D], k);
    writeTensor(join(dir, 'v.npy'), [Hk, Sk, D], v);
    await body({
      request: (name, { lse = true, blockK = c.blockK } = {}) => ({
        q: join(dir, 'q.npy'),
        k: join(dir, 'k.npy'),
        v: join(dir, 'v.npy'),
        out: join(dir, `${name}.npy`),
        ...(lse ? { lse: join(dir, `${name}-lse.npy`) } : {}),
        options: c.options,
        backend: c.backend,
        blockQ: 128,
        ...(blockK ? { blockK } : {}),
      }),
      async queue(request) {
        if (services.length === 0) {
          services.push(await startService('reducer', redis.url));
          for (let n = 0; n < c.workers; n++) services.push(await startService('worker', redis.url, ['--backend', c.backend]));
        }
        await runQueue(request, { redis: redis.url, tilesPerJob: 3 });
      },
      exact(request) {
        const { causal, window, pattern } = c.options;
        want ??= bruteWithBound({ layout: 'bhsd', B: 1, ...c.shape, causal, window: [window.left, window.right], ...pattern }, q, k, v);
        const got = exactness({ out: readTensor(request.out).data, lse: readTensor(request.lse!).data }, want);
        return { exact: got.exact, message: `err ${got.err} (bound ${want.bound}), lse err ${got.lseErr}` };
      },
    });
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Band tiles (docs/math.md, "Band tiles") on the queue engine with ort: workers plan the same band
 * tiles from the manifest and run them through ort's band call; the q-blocks around them (global
 * rows, the sequence's ends) split across tile jobs as partial blobs. Bits equal runLocal's, exact.
 */
test.serial('queue engine, ort: band tiles and split q-blocks — bits equal runLocal (2 threads), exact vs float64', async (t) => {
  const options = { causal: false, window: { left: 20, right: 13 }, pattern: { global: [0, 1, 2, 300] } };
  await withBandQueue(
    { shape: { H: 2, Hk: 1, Sq: 700, Sk: 721, D: 5 }, seeds: [51, 52, 53], options, backend: 'ort', workers: 2 },
    async (w) => {
      // blockK 64: no band (a band here needs 3 + 1 + 160 keys), q-blocks of several tiles split across jobs; 512: band tiles.
      for (const blockK of [64, 512]) {
        const local = w.request(`local-${blockK}`, { blockK });
        const queued = w.request(`queue-${blockK}`, { blockK });
        await runLocal(local, { threads: 2 });
        await w.queue(queued);
        t.true(readFileSync(queued.out).equals(readFileSync(local.out)), `O, blockK ${blockK}`);
        t.true(readFileSync(queued.lse!).equals(readFileSync(local.lse!)), `LSE, blockK ${blockK}`);
        const { exact, message } = w.exact(queued);
        t.true(exact, `blockK ${blockK}: ${message}`);
      }
    },
  );
});

test.serial(
  'queue engine, ort: band tiles (causal window + sinks) — O bits equal runLocal’s without --lse (o-only sole tiles) and with it, LSE runLocal’s; exact',
  async (t) => {
    const options = { causal: true, window: { left: 100, right: 0 }, pattern: { sinks: 3 } };
    const shape = { H: 2, Hk: 1, Sq: 900, Sk: 933, D: 6 };
    await withBandQueue({ shape, seeds: [71, 72, 73], scales: [2, 2, 1], options, backend: 'ort', workers: 2, blockK: 512 }, async (w) => {
      const oOnly = w.request('local', { lse: false });
      const withLse = w.request('local-lse');
      await runLocal(oOnly, { threads: 2 });
      await runLocal(withLse, { threads: 2 });
      const queued = w.request('queue');
      await w.queue(queued);
      t.true(readFileSync(queued.out).equals(readFileSync(oOnly.out)), 'O = runLocal without --lse');
      t.true(readFileSync(queued.out).equals(readFileSync(withLse.out)), 'O = runLocal with --lse');
      t.true(readFileSync(queued.lse!).equals(readFileSync(withLse.lse!)), 'LSE');
      const { exact, message } = w.exact(queued);
      t.true(exact, message);
    });
  },
);

test.serial(
  'queue engine, js workers (no band path): band tiles run as their parts, whose key runs the workers prefetch too — bits equal runLocal’s, exact',
  async (t) => {
    // Bands of 3 + 127 + 171 keys: their parts (the window's core mask-free, its edges masked) are other key runs,
    // and a band straddling an aligned key block reads them from blocks the band's own run does not name.
    const options = { causal: false, window: { left: 150, right: 20 }, pattern: { global: [0, 1, 2] } };
    const shape = { H: 1, Hk: 1, Sq: 1400, Sk: 1421, D: 5 };
    await withBandQueue({ shape, seeds: [81, 82, 83], options, backend: 'js', workers: 1, blockK: 512 }, async (w) => {
      const local = w.request('local');
      await runLocal(local, { threads: 2 });
      const queued = w.request('queue');
      await w.queue(queued);
      t.true(readFileSync(queued.out).equals(readFileSync(local.out)), 'O');
      t.true(readFileSync(queued.lse!).equals(readFileSync(local.lse!)), 'LSE');
      const { exact, message } = w.exact(queued);
      t.true(exact, message);
    });
  },
);
