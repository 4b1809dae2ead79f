import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { PatternOptions } from '@longattn/attention';
import { runLocal } from '@longattn/engine';
import { runQueue } from '@longattn/engine/queue';
import { readTensor, writeTensor } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { randomTensor } from '../support/random.ts';
import { bruteWithBound, exactness } from '../support/reference64.ts';
import { startService, type Service } from '../queue/support.ts';

interface QueueCase {
  name: string;
  window?: [number, number];
  pattern: (cells: number[], shape: number[], block: number) => PatternOptions;
  /** Tile sizes (default 16 × 32); null: the engines' defaults (under a stride, strideBlocks' long q-blocks). */
  blocks?: { blockQ: number; blockK: number } | null;
  /** Also run with one worker and whole q-blocks per job (default batching): the bits may not change. */
  moreRuns?: boolean;
}

const QUEUE_CASES: QueueCase[] = [
  {
    name: 'sinks ∪ globals ∪ stride ∪ a per-head block mask, causal (aligned key blocks)',
    pattern: (cells, shape, block) => ({ sinks: 2, global: [50], stride: 7, blockMask: { block, shape, cells } }),
  },
  {
    // No stride: row groups (global rows 49–51 apart, block-mask blocks of 20 cut the q-blocks of 16)
    // and keys gathered from several runs, which straddle the workers' cached key blocks of 32.
    name: 'window (5,0) ∪ sinks ∪ global rows 49–51 ∪ a per-head block mask, causal (row groups, gathered keys)',
    window: [5, 0],
    pattern: (cells, shape, block) => ({ sinks: 3, global: [49, 50, 51], blockMask: { block, shape, cells } }),
  },
  {
    // Stride tiles on gathered rows (docs/math.md, "Cost follows the pattern"): each residue class's
    // rows of a q-block of 48 against its keys, split across jobs as partial blobs of strided rows.
    name: 'stride 7 ∪ window (3,0) ∪ sinks 2 ∪ global 50, causal, q-blocks of 48 (gathered class rows)',
    window: [3, 0],
    pattern: () => ({ stride: 7, sinks: 2, global: [50] }),
    blocks: { blockQ: 48, blockK: 9 },
    moreRuns: true,
  },
  {
    name: 'stride 3 ∪ a per-head block mask, causal, default tiles (one long q-block per head)',
    pattern: (cells, shape, block) => ({ stride: 3, blockMask: { block, shape, cells } }),
    blocks: null,
    moreRuns: true,
  },
];

for (const c of QUEUE_CASES)
  test.serial(
    `queue engine: ${c.name} — the manifest carries the pattern, workers plan the same tiles, bits equal runLocal and exact`,
    async (t) => {
      const redis = await startRedis();
      const dir = mkdtempSync(join(tmpdir(), 'longattn-patterns-queue-'));
      const services: Service[] = [];
      try {
        const [H, Hk, Sq, Sk, D, block] = [2, 1, 101, 119, 6, 20];
        const [nQb, nKb] = [Math.ceil(Sq / block), Math.ceil(Sk / block)];
        const cells = Array.from(randomTensor(H * nQb * nKb, 41), (x) => (x > 0.4 ? 1 : 0));
        const q = randomTensor(H * Sq * D, 42);
        const k = randomTensor(Hk * Sk * D, 43);
        const v = randomTensor(Hk * Sk * D, 44);
        writeTensor(join(dir, 'q.npy'), [H, Sq, D], q);
        writeTensor(join(dir, 'k.npy'), [Hk, Sk, D], k);
        writeTensor(join(dir, 'v.npy'), [Hk, Sk, D], v);
        const pattern = c.pattern(cells, [H, nQb, nKb], block);
        const window = c.window ? { window: { left: c.window[0], right: c.window[1] } } : {};
        const base = {
          q: join(dir, 'q.npy'),
          k: join(dir, 'k.npy'),
          v: join(dir, 'v.npy'),
          options: { causal: true, ...window, pattern },
          backend: 'js',
          ...(c.blocks === null ? {} : (c.blocks ?? { blockQ: 16, blockK: 32 })),
        };
        const local = { ...base, out: join(dir, 'local.npy'), lse: join(dir, 'local-lse.npy') };
        const queued = { ...base, out: join(dir, 'queue.npy'), lse: join(dir, 'queue-lse.npy') };
        await runLocal(local, { threads: 2 });
        services.push(
          await startService('reducer', redis.url),
          await startService('worker', redis.url, ['--backend', 'js']),
          await startService('worker', redis.url, ['--backend', 'js']),
        );
        await runQueue(queued, { redis: redis.url, tilesPerJob: 3 });
        t.true(readFileSync(queued.out).equals(readFileSync(local.out)), 'O');
        t.true(readFileSync(queued.lse).equals(readFileSync(local.lse)), 'LSE');
        if (c.moreRuns) {
          // Whole q-blocks per job (no partial blobs), then one worker: the same bits.
          const whole = { ...base, out: join(dir, 'whole.npy'), lse: join(dir, 'whole-lse.npy') };
          await runQueue(whole, { redis: redis.url });
          await services.pop()!.kill();
          const one = { ...base, out: join(dir, 'one.npy'), lse: join(dir, 'one-lse.npy') };
          await runQueue(one, { redis: redis.url, tilesPerJob: 2 });
          for (const run of [whole, one]) {
            t.true(readFileSync(run.out).equals(readFileSync(local.out)), `O (${run.out})`);
            t.true(readFileSync(run.lse).equals(readFileSync(local.lse)), `LSE (${run.out})`);
          }
        }
        const want = bruteWithBound(
          {
            layout: 'bhsd',
            B: 1,
            H,
            Hk,
            Sq,
            Sk,
            D,
            causal: true,
            ...(c.window ? { window: c.window } : {}),
            ...(pattern.sinks !== undefined ? { sinks: pattern.sinks } : {}),
            ...(pattern.global ? { global: pattern.global } : {}),
            ...(pattern.stride !== undefined ? { stride: pattern.stride } : {}),
            ...(pattern.blockMask ? { blockMask: pattern.blockMask } : {}),
          },
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
