import test from 'ava';
import { plan, validateSpec } from '@longattn/attention';
import { runQueue } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { startS3 } from '../s3/support.ts';
import { oddInputs, startService } from './support.ts';

const BUCKET = 'longattn-reads';

for (const store of ['redis', 's3'] as const) {
  test.serial(
    `${store} blobs: a worker's reads line counts each tile job's own reads, however many its thread holds at once (every block once, from the definitions)`,
    async (t) => {
      const [redis, s3] = await Promise.all([startRedis(), store === 's3' ? startS3([BUCKET]) : undefined]);
      if (s3) Object.assign(process.env, s3.env);
      const shape = { H: 4, Hk: 2, Sq: 300, Sk: 517, D: 24 };
      const inputs = oddInputs(shape);
      const blobs = store === 's3' ? ['--blobs', `s3://${BUCKET}/jobs`] : [];
      const [worker, reducer] = await Promise.all([
        startService('worker', redis.url, ['--backend', 'js', ...blobs], 'cli'),
        startService('reducer', redis.url, blobs, 'cli'),
      ]);
      try {
        // One whole q-block per tile job (the cheapest's cost as the target: none costs twice it), 20 jobs,
        // three at a time in the worker's one kernel thread; whole, so each q-block's rows are read once.
        const spec = validateSpec({ q: [4, 300, 24], k: [2, 517, 24], v: [2, 517, 24] }, { causal: true });
        const grid = plan(spec, { blockQ: 64, blockK: 128 });
        const costs = Array.from({ length: grid.qBlockCount }, (_, qi) => grid.flopsIn(qi));
        t.true(Math.max(...costs) < 2 * Math.min(...costs));
        await runQueue(inputs.request('reads'), {
          redis: redis.url,
          ...(s3 ? { blobs: `s3://${BUCKET}/jobs` } : {}),
          jobFlops: Math.min(...costs),
        });
        t.is(await worker.stop(), 0);
        const line = worker
          .log()
          .match(
            /reads: ([0-9.]+) MiB .*cache (\d+) hits \/ (\d+) misses.*, ([0-9.]+) s reading, [0-9.]+ GFLOP, ([0-9.]+) s stalled, ([0-9.]+) s computing/g,
          );
        const m =
          /reads: ([0-9.]+) MiB .*cache (\d+) hits \/ (\d+) misses.*, ([0-9.]+) s reading, [0-9.]+ GFLOP, ([0-9.]+) s stalled, ([0-9.]+) s computing/.exec(
            line?.at(-1) ?? '',
          );
        t.truthy(m, worker.log());
        const [, mib, hits, misses, reading, stalled, computing] = m!.map(Number);
        const { H, Hk, Sq, Sk, D } = shape;
        // One worker with room for everything: every query row once (past the cache) and every aligned
        // K/V block (⌈517 / 128⌉ = 5 per kv head, for K and for V) missed once; causal, so all are read.
        const bytes = (H * Sq * D + 2 * Hk * Sk * D) * 4;
        t.is(mib!.toFixed(1), (bytes / 2 ** 20).toFixed(1));
        t.is(misses, 2 * Hk * Math.ceil(Sk / 128));
        t.true(hits! > 0);
        t.true(stalled! <= reading! + 0.01, `stalled ${stalled} ≤ reading ${reading}`);
        t.true(computing! > 0);
      } finally {
        await Promise.all([worker.kill(), reducer.kill()]);
        await Promise.all([redis.close(), s3?.close()]);
        inputs.cleanup();
      }
    },
  );
}
