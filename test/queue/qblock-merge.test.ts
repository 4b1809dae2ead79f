import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { plan, validateSpec } from '@longattn/attention';
import { blobNames, connectRedis, jobKeys } from '@longattn/engine/queue';
import { FsBlobStore } from '../../packages/engine/src/blobs/fs-store.ts';
import type { JobContext } from '../../packages/engine/src/queue/job-context.ts';
import type { JobManifest } from '../../packages/engine/src/queue/manifest.ts';
import { mergeQBlocks } from '../../packages/engine/src/queue/qblock-merge.ts';
import { startRedis } from '../../scripts/redis-test-server.ts';

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
