import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { merge, plan, validateSpec, type TilePartial } from '@longattn/attention';
import { maskRule } from '@longattn/attention';
import { TEST_KERNELS_ENV, waitBackend } from '@longattn/kernels';
import { blobNames, connectRedis, jobKeys } from '@longattn/engine/queue';
import { FsBlobStore } from '../../packages/engine/src/blobs/fs-store.ts';
import { RedisBlobStore } from '../../packages/engine/src/blobs/redis-store.ts';
import type { BlobStore } from '../../packages/engine/src/blobs/blob-store.ts';
import { BufferPool } from '../../packages/engine/src/queue/buffer-pool.ts';
import type { JobContext } from '../../packages/engine/src/queue/job-context.ts';
import type { JobManifest } from '../../packages/engine/src/queue/manifest.ts';
import { mergeQBlocks } from '../../packages/engine/src/queue/qblock-merge.ts';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { randomTensor } from '../support/random.ts';

test('BufferPool lends a view of the length asked, takes the smallest kept buffer that fits, keeps at most `keep` of at most `maxLength`', (t) => {
  const pool = new BufferPool(2, 100);
  const a = pool.take(50);
  t.is(a.length, 50);
  a.fill(7);
  pool.give(a);
  const b = pool.take(20);
  t.is(b.length, 20);
  t.is(b.buffer, a.buffer, 'the kept buffer, not fresh memory');
  pool.give(b);
  pool.give(b); // twice: kept once
  const c = pool.take(30);
  const d = pool.take(30);
  t.is(c.buffer, a.buffer);
  t.not(d.buffer, a.buffer, 'kept once: the second take is fresh');
  pool.give(pool.take(101)); // too long to keep
  const e = pool.take(101);
  t.is(e.length, 101);
  t.not(e.buffer, a.buffer);
});

/**
 * Two q-blocks of one job, split into runs of tiles stored as partial blobs (as tile jobs store
 * them), merged one after the other on one store: the second (fewer rows and tiles) reuses the
 * first's kept buffers (fs), so any stale value would show. Each must give exactly the bits of
 * merge() of its tiles' partials, on fs (kept buffers) and on Redis (getMany, fresh memory) alike.
 */
async function mergeTwice(t: import('ava').ExecutionContext, store: BlobStore, client: ReturnType<typeof connectRedis>, id: string) {
  // Sq 13 over Sk 29, blockQ 7 (q-blocks of 7 and 6 rows), tiles of 5 keys (the last 4): 6 tiles per q-block, not causal.
  const spec = validateSpec({ q: [1, 13, 3], k: [1, 29, 3], v: [1, 29, 3] }, {});
  const thePlan = plan(spec, { blockQ: 7, blockK: 5 });
  const ctx = { manifest: { id, spec } as unknown as JobManifest, plan: thePlan, store } as JobContext;
  await client.hset(jobKeys.hash(id), 'state', 'queued');
  for (const [qi, seed] of [
    [0, 21],
    [1, 22],
  ] as const) {
    const block = thePlan.block(qi);
    t.is(block.tiles.length, 6);
    const partials: TilePartial[] = block.tiles.map((tile, n) => ({
      rows: block.rows,
      D: 3,
      kStart: tile.kStart,
      o: randomTensor(block.rows * 3, seed * 10 + n),
      lse: randomTensor(block.rows, seed * 10 + n + 5, 4),
    }));
    const runs = [
      [0, 1],
      [1, 4],
      [4, 6],
    ] as const;
    await store.putMany(
      runs.map(([from, to]) => ({
        name: blobNames.partial(id, qi, block.tiles[from]!.kBlock),
        data: new Uint8Array(Float32Array.from(partials.slice(from, to).flatMap((p) => [...p.o, ...p.lse])).buffer),
      })),
    );
    t.deepEqual(await mergeQBlocks(ctx, client, [qi], 0, new Map([[qi, runs.map(([from]) => from)]])), { merged: 1, state: 'queued' });
    const want = merge(partials);
    const row = qi * 7;
    // Copied out: a store's read may be a view into a larger buffer (a Redis reply).
    const out = new Float32Array(Uint8Array.from(await store.read(blobNames.out(id), row * 3 * 4, block.rows * 3 * 4)).buffer);
    const lse = new Float32Array(Uint8Array.from(await store.read(blobNames.lse(id), row * 4, block.rows * 4)).buffer);
    t.true(Buffer.from(out.buffer).equals(Buffer.from(want.o.buffer)), `q-block ${qi}: O bits`);
    t.true(Buffer.from(lse.buffer).equals(Buffer.from(want.lse.buffer)), `q-block ${qi}: LSE bits`);
  }
  return { ctx, thePlan };
}

test('mergeQBlocks on kept buffers (fs) and on fresh memory (Redis blobs): each q-block the bits of merge() of its tiles, a missing or short part a retryable error, not zeros', async (t) => {
  const redis = await startRedis();
  const client = connectRedis(redis.url);
  const dir = mkdtempSync(join(tmpdir(), 'longattn-merge-buffers-'));
  try {
    const fs = new FsBlobStore(join(dir, 'blobs'));
    const { ctx, thePlan } = await mergeTwice(t, fs, client, 'la-test-0000000011');
    await mergeTwice(t, new RedisBlobStore(client, 'redis'), client, 'la-test-0000000012');

    // fs: a part missing (never stored) or shorter than its tiles' partials: RetryableJobError, nothing marked.
    const id = 'la-test-0000000011';
    await client.srem(jobKeys.reduced(id), '0');
    const block = thePlan.block(0);
    const name = (from: number) => blobNames.partial(id, 0, block.tiles[from]!.kBlock);
    const bytes = (tiles: number) => new Uint8Array(tiles * block.rows * 4 * 4);
    await fs.putMany([
      { name: name(0), data: bytes(1) },
      { name: name(1), data: bytes(3) },
    ]);
    await t.throwsAsync(mergeQBlocks(ctx, client, [0], 0, new Map([[0, [0, 1, 4]]])), {
      name: 'RetryableJobError',
      message: new RegExp(`partial ${name(4)} is missing`),
    });
    writeFileSync(join(dir, 'blobs', name(4)), bytes(1)); // 1 tile's bytes where the run holds 2
    await t.throwsAsync(mergeQBlocks(ctx, client, [0], 0, new Map([[0, [0, 1, 4]]])), {
      name: 'RetryableJobError',
      message: new RegExp(`partial ${name(4)} holds ${7 * 4 * 4} bytes, expected ${2 * 7 * 4 * 4}`),
    });
    t.false((await client.smembers(jobKeys.reduced(id))).includes('0'), 'q-block 0 not marked');
  } finally {
    client.disconnect();
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial(
  'the wait kernel’s masked tiles of one geometry share a partial: lse 0 where a row sees a key, −∞ where none, from the mask’s definition, at any position',
  async (t) => {
    process.env[TEST_KERNELS_ENV] = 'wait';
    try {
      // Sq = Sk = 40, causal, window left 6: row i sees keys j with i − 6 ≤ j ≤ i. Tiles of 8 rows × 8 keys.
      const spec = validateSpec({ q: [1, 40, 2], k: [1, 40, 2], v: [1, 40, 2] }, { causal: true, window: { left: 6, right: 0 } });
      const rule = maskRule(spec);
      const kernel = await waitBackend.create({ mode: '1e9' });
      const job = (qStart: number, kStart: number) => ({
        rows: 8,
        keys: 8,
        D: 2,
        scale: 1,
        qStart,
        kStart,
        rule,
        full: false,
        q: new Float32Array(16),
        k: new Float32Array(16),
        v: new Float32Array(16),
      });
      const want = (qStart: number, kStart: number) =>
        Array.from({ length: 8 }, (_, r) => {
          const i = qStart + r;
          const sees = Array.from({ length: 8 }, (_, c) => kStart + c).some((j) => j >= i - 6 && j <= i);
          return sees ? 0 : -Infinity;
        });
      const got: TilePartial[] = [];
      // Diagonal tiles at three positions, then tiles one block below the diagonal (rows 8 ahead of their keys), twice round.
      for (let round = 0; round < 2; round++)
        for (const [qs, ks] of [
          [0, 0],
          [16, 16],
          [32, 32],
          [8, 0],
          [24, 16],
          [16, 0],
        ] as const) {
          const p = await kernel.run(job(qs, ks));
          t.deepEqual([...p.lse], want(qs, ks), `tile (${qs}, ${ks}), round ${round}`);
          t.is(p.kStart, ks);
          t.true(p.o.length === 16 && p.o.every((x) => x === 0));
          got.push(p);
        }
      t.is(got[1]!.lse, got[0]!.lse, 'diagonal tiles share one partial');
      t.is(got[4]!.lse, got[3]!.lse, 'so do the tiles one block below');
      t.not(got[3]!.lse, got[0]!.lse);
      t.deepEqual(want(16, 0), Array(8).fill(-Infinity), 'two blocks below: no row sees a key (the planner skips such tiles)');
    } finally {
      delete process.env[TEST_KERNELS_ENV];
    }
  },
);
