import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { merge, plan, validateSpec, type TilePartial } from '@longattn/attention';
import { blobNames, connectRedis, jobKeys } from '@longattn/engine/queue';
import { FsBlobStore } from '../../packages/engine/src/blobs/fs-store.ts';
import type { JobContext } from '../../packages/engine/src/queue/job-context.ts';
import type { JobManifest } from '../../packages/engine/src/queue/manifest.ts';
import { mergeQBlocks } from '../../packages/engine/src/queue/qblock-merge.ts';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { randomTensor } from '../support/random.ts';
import { bruteAttention, bruteWithBound, exactness, type BruteSpec } from '../support/reference64.ts';

test('mergeQBlocks marks its q-blocks reduced and returns the job state read with the mark (a cancel during the merge is seen without another read)', async (t) => {
  const redis = await startRedis();
  const client = connectRedis(redis.url);
  const dir = mkdtempSync(join(tmpdir(), 'longattn-qblock-merge-'));
  const id = 'la-test-0000000002';
  try {
    // Sq 9 > Sk 3, causal (bottom-right): row i sees keys j ≤ i − 6, so rows 0–5 see none and
    // q-blocks 0 and 1 (rows 0–2, 3–5; blockQ 3) have no tiles: merged without reading a partial.
    const spec = validateSpec({ q: [1, 9, 2], k: [1, 3, 2], v: [1, 3, 2] }, { causal: true });
    const thePlan = plan(spec, { blockQ: 3, blockK: 3 });
    t.is(thePlan.block(0).tiles.length, 0);
    t.is(thePlan.block(1).tiles.length, 0);
    const store = new FsBlobStore(join(dir, 'blobs'));
    const ctx = { manifest: { id, spec } as unknown as JobManifest, plan: thePlan, store } as JobContext;
    await client.hset(jobKeys.hash(id), 'state', 'queued');
    t.deepEqual(await mergeQBlocks(ctx, client, [0]), { merged: 1, state: 'queued' });
    t.deepEqual(await client.smembers(jobKeys.reduced(id)), ['0']);
    // Its rows, from the definitions: no key seen → o = 0, lse = −∞.
    const lse = new Float32Array((await store.read(blobNames.lse(id), 0, 3 * 4)).slice().buffer);
    t.deepEqual([...lse], [-Infinity, -Infinity, -Infinity]);
    const o = new Float32Array((await store.read(blobNames.out(id), 0, 3 * 2 * 4)).slice().buffer);
    t.true(o.every((x) => Object.is(x, 0)));
    // Cancelled while it merged: the state comes back with the mark.
    await client.hset(jobKeys.hash(id), 'state', 'cancelled');
    t.deepEqual(await mergeQBlocks(ctx, client, [1]), { merged: 1, state: 'cancelled' });
    await client.del(jobKeys.hash(id));
    t.deepEqual(await mergeQBlocks(ctx, client, [1]), { merged: 1, state: '' }, 'gone');
    t.deepEqual(await mergeQBlocks(ctx, client, []), { merged: 0, state: undefined }, 'nothing to merge: no round trip');
  } finally {
    client.disconnect();
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mergeQBlocks: a split q-block stored as one blob per run of tiles merges exactly (float64 reference), bit-identical to merging its tiles, runs from the record or the hash', async (t) => {
  const redis = await startRedis();
  const client = connectRedis(redis.url);
  const dir = mkdtempSync(join(tmpdir(), 'longattn-qblock-merge-'));
  const id = 'la-test-0000000003';
  try {
    // One q-block of 7 rows over 23 keys in tiles of 5 (the last one 3 keys): 5 tiles, split as a
    // tile job would split them into runs [0, 2) and [2, 5), each run's partials one blob.
    const brute: BruteSpec = { layout: 'bhsd', B: 1, H: 1, Hk: 1, Sq: 7, Sk: 23, D: 3, causal: false };
    const spec = validateSpec({ q: [1, 7, 3], k: [1, 23, 3], v: [1, 23, 3] }, {});
    const thePlan = plan(spec, { blockQ: 7, blockK: 5 });
    const block = thePlan.block(0);
    t.deepEqual(
      block.tiles.map((tile) => [tile.kStart, tile.keys]),
      [
        [0, 5],
        [5, 5],
        [10, 5],
        [15, 5],
        [20, 3],
      ],
    );
    const [q, k, v] = [randomTensor(21, 11), randomTensor(69, 12), randomTensor(69, 13)];
    // Each tile's partial from the definitions: attention of the 7 rows over the tile's keys alone, in float64, stored as float32.
    const partials: TilePartial[] = block.tiles.map((tile) => {
      const keys = { ...brute, Sk: tile.keys };
      const slice = (x: Float32Array) => x.subarray(tile.kStart * 3, (tile.kStart + tile.keys) * 3);
      const { out, lse } = bruteAttention(keys, q, slice(k), slice(v));
      return { rows: 7, D: 3, kStart: tile.kStart, o: Float32Array.from(out), lse: Float32Array.from(lse) };
    });
    const store = new FsBlobStore(join(dir, 'blobs'));
    const ctx = { manifest: { id, spec } as unknown as JobManifest, plan: thePlan, store } as JobContext;
    const runs = [
      [0, 2],
      [2, 5],
    ] as const;
    const put = () =>
      store.putMany(
        runs.map(([from, to]) => {
          const packed = partials.slice(from, to).flatMap((p) => [...p.o, ...p.lse]);
          return { name: blobNames.partial(id, 0, block.tiles[from]!.kBlock), data: new Uint8Array(Float32Array.from(packed).buffer) };
        }),
      );
    const rows = async () => ({
      out: new Float32Array((await store.read(blobNames.out(id), 0, 7 * 3 * 4)).slice().buffer),
      lse: new Float32Array((await store.read(blobNames.lse(id), 0, 7 * 4)).slice().buffer),
    });
    const want = merge(partials);
    const bound = bruteWithBound(brute, q, k, v);
    await client.hset(jobKeys.hash(id), 'state', 'queued', 'r:0', '2,0'); // the runs as the record left them (arrival order)

    // The reducer's way: no runs given, read from the hash.
    await put();
    t.deepEqual(await mergeQBlocks(ctx, client, [0]), { merged: 1, state: 'queued' });
    const fromHash = await rows();
    t.true(Buffer.from(fromHash.out.buffer).equals(Buffer.from(want.o.buffer)), 'O: the bits of merging the 5 tiles');
    t.true(Buffer.from(fromHash.lse.buffer).equals(Buffer.from(want.lse.buffer)), 'LSE: the bits of merging the 5 tiles');
    const { exact, err, lseErr } = exactness(fromHash, bound);
    t.true(exact, `against float64: max|O − ref| ${err} (bound ${bound.bound}), LSE ${lseErr}`);
    t.is(await client.hget(jobKeys.hash(id), 'r:0'), null, 'the mark deletes the runs');
    t.deepEqual(await store.existsMany(runs.map(([from]) => blobNames.partial(id, 0, block.tiles[from]!.kBlock))), [false, false]);

    // The worker's way: the runs from its record; the same bits.
    await client.srem(jobKeys.reduced(id), '0');
    await put();
    t.deepEqual(await mergeQBlocks(ctx, client, [0], 0, new Map([[0, [0, 2]]])), { merged: 1, state: 'queued' });
    const fromRecord = await rows();
    t.true(Buffer.from(fromRecord.out.buffer).equals(Buffer.from(want.o.buffer)));
    t.true(Buffer.from(fromRecord.lse.buffer).equals(Buffer.from(want.lse.buffer)));

    // Runs that do not cover the tiles, or none recorded: a retryable error, nothing marked.
    await client.srem(jobKeys.reduced(id), '0');
    await put();
    await t.throwsAsync(mergeQBlocks(ctx, client, [0], 0, new Map([[0, [1, 2]]])), {
      message: /recorded runs \(1,2\) do not cover its 5 tiles/,
    });
    await t.throwsAsync(mergeQBlocks(ctx, client, [0]), { message: /no run of its tiles is recorded/ });
    t.deepEqual(await client.smembers(jobKeys.reduced(id)), []);
  } finally {
    client.disconnect();
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
