import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import test from 'ava';
import { plan, validateSpec } from '@longattn/attention';
import { TEST_KERNELS_ENV, waitBackend } from '@longattn/kernels';
import { runQueue } from '@longattn/engine/queue';
import { arraySource } from '../../packages/engine/src/block-source.ts';
import { computeTiles } from '../../packages/engine/src/compute-block.ts';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { oddInputs, startService, type Service } from './support.ts';

const root = resolve(import.meta.dirname, '../..');

test('longattn worker --backend wait is refused (exit 2 naming --backend) unless LONGATTN_TEST_KERNELS=wait', async (t) => {
  const redis = await startRedis();
  try {
    const env = { ...process.env };
    delete env.LONGATTN_TEST_KERNELS;
    const r = spawnSync(
      process.execPath,
      [join(root, 'packages/cli/bin/longattn.mjs'), 'worker', '--redis', redis.url, '--backend', 'wait:50'],
      {
        env,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    t.is(r.status, 2, r.stderr);
    t.regex(r.stderr, /--backend.*test-only.*LONGATTN_TEST_KERNELS=wait/);
    t.is(r.stderr.trim().split('\n').length, 1);
  } finally {
    await redis.close();
  }
});

test.serial(
  'a job on wait:G runs on workers given LONGATTN_TEST_KERNELS=wait, in their event loop (no kernel threads), for about FLOPs / G',
  async (t) => {
    const redis = await startRedis();
    const inputs = oddInputs();
    const services: Service[] = [];
    process.env.LONGATTN_TEST_KERNELS = 'wait';
    try {
      services.push(await startService('reducer', redis.url));
      for (let i = 0; i < 2; i++) services.push(await startService('worker', redis.url, ['--backend', 'wait:0.05']));
      // Only the main thread's and Node's own threads: no Piscina worker was started.
      for (const s of services.slice(1)) t.regex(s.log(), /tiles on its event loop/);
      const request = inputs.request('wait', { backend: 'wait:0.05' });
      const result = await runQueue(request, { redis: redis.url, tilesPerJob: 4 });
      t.is(result.backend, 'wait:0.05');
      // 2 workers, one tile job each at a time: at least half the modelled time (FLOPs / 0.05 GFLOP/s).
      const modelledMs = result.flops / 0.05e6;
      t.true(result.computeMs >= modelledMs / 2 - 5, `${result.computeMs} ms for ${modelledMs} ms of modelled work on 2 workers`);
      t.true(result.computeMs < modelledMs * 3 + 5000, `${result.computeMs} ms for ${modelledMs} ms of modelled work`);
    } finally {
      delete process.env.LONGATTN_TEST_KERNELS;
      await Promise.all(services.map((s) => s.kill()));
      await redis.close();
      inputs.cleanup();
    }
  },
);

test.serial(
  'the wait kernel’s partials: o = 0, lse = 0 on rows that see a key of the tile, −∞ on rows that see none; full tiles share one zero partial, each with its own kStart',
  async (t) => {
    process.env[TEST_KERNELS_ENV] = 'wait';
    try {
      // Sq 5, Sk 9, causal (bottom-right): row i sees keys j ≤ i + 4. Tiles of 4 keys: [0, 4) full,
      // [4, 8) and [8, 9) masked (rows 0–3 see no key of the last one).
      const spec = validateSpec({ q: [1, 5, 3], k: [1, 9, 3], v: [1, 9, 3] }, { causal: true });
      const block = plan(spec, { blockQ: 5, blockK: 4 }).block(0);
      const kernel = await waitBackend.create({ mode: '1e6' });
      const source = arraySource(spec, new Float32Array(15), new Float32Array(27), new Float32Array(27));
      for (let round = 0; round < 2; round++) {
        const partials = await computeTiles(kernel, spec, block.tiles, source);
        t.deepEqual(
          partials.map((p) => p.kStart),
          block.tiles.map((tile) => tile.kStart),
        );
        partials.forEach((p, n) => {
          const tile = block.tiles[n]!;
          const sees = (i: number) => tile.kStart <= i + 4; // some key j in [kStart, kStart + keys) with j ≤ i + 4
          t.deepEqual(
            [...p.lse],
            [0, 1, 2, 3, 4].map((i) => (sees(i) ? 0 : -Infinity)),
            `tile at key ${tile.kStart}, round ${round}`,
          );
          t.true(p.o.length === 5 * 3 && p.o.every((x) => x === 0));
        });
      }
      t.true(block.tiles[0]!.full && !block.tiles[2]!.full);
    } finally {
      delete process.env[TEST_KERNELS_ENV];
    }
  },
);
