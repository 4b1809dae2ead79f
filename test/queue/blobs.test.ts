import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { connectRedis, FsBlobStore, RedisBlobStore, type BlobStore } from '@longattn/engine/queue';
import { startRedis, type RedisTestServer } from '../../scripts/redis-test-server.ts';

let redis: RedisTestServer;
const dirs: string[] = [];
test.before(async () => {
  redis = await startRedis();
});
test.after.always(async () => {
  await redis?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Each store under test: fs in a temp dir; redis with 10-byte chunks so ranges cross chunk edges. */
const stores: [string, () => BlobStore][] = [
  [
    'fs',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'longattn-blobs-'));
      dirs.push(dir);
      return new FsBlobStore(dir);
    },
  ],
  [
    'redis',
    () =>
      new RedisBlobStore(connectRedis(redis.url), 'redis', {
        chunk: 10,
        namespace: `t${Math.random().toString(36).slice(2)}:`,
        ownsConnection: true,
      }),
  ],
];

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

for (const [kind, open] of stores) {
  test(`${kind}: positional writes, sealing, range reads across chunks`, async (t) => {
    const store = open();
    const data = bytes(57);
    // Written out of order in pieces, as reducers write output rows.
    await store.write('j/out/o', 30, data.subarray(30));
    await store.write('j/out/o', 0, data.subarray(0, 13));
    await store.write('j/out/o', 13, data.subarray(13, 30));
    t.is(await store.header('j/out/o'), null, 'not visible before seal');
    await store.seal('j/out/o', { size: 57, meta: { shape: [3, 19] } });
    t.deepEqual(await store.header('j/out/o'), { size: 57, meta: { shape: [3, 19] }, ...(kind === 'redis' ? { chunk: 10 } : {}) });
    for (const [offset, length] of [
      [0, 57],
      [9, 2],
      [10, 10],
      [17, 31],
      [56, 1],
      [0, 0],
    ] as const) {
      t.deepEqual(
        [...(await store.read('j/out/o', offset, length))],
        [...data.subarray(offset, offset + length)],
        `range ${offset}+${length}`,
      );
    }
    await store.seal('j/out/o', { size: 57, meta: { shape: [3, 19] } }); // a retried finalise seals again
    t.deepEqual([...(await store.read('j/out/o', 0, 57))], [...data], 'sealing again keeps the bytes');
    t.deepEqual([...(await store.read('j/none', 5, 4))], [0, 0, 0, 0], 'never written bytes read as 0');
    const shared = new Uint8Array(new SharedArrayBuffer(23)).fill(9);
    await store.readInto('j/out/o', 31, shared);
    t.deepEqual([...shared], [...data.subarray(31, 54)], 'readInto shared memory');
    await store.readInto('j/out/o', 50, shared);
    t.deepEqual([...shared], [...data.subarray(50), ...new Array(16).fill(0)], 'past the end: zeros');
    await store.close();
  });

  test(`${kind}: putMany/getMany/existsMany, delete and deletePrefix`, async (t) => {
    const store = open();
    await store.putMany([
      { name: 'a/p/0.0', data: bytes(8, 1) },
      { name: 'a/p/0.1', data: bytes(25, 2) },
      { name: 'a/p/1.0', data: new Uint8Array(0) },
      { name: 'b/in/q', data: bytes(3, 3) },
    ]);
    const got = await store.getMany(['a/p/0.0', 'a/p/0.1', 'a/p/1.0', 'a/p/9.9']);
    t.deepEqual(
      got.map((b) => (b ? [...b] : null)),
      [[...bytes(8, 1)], [...bytes(25, 2)], [], null],
    );
    t.deepEqual(await store.existsMany(['a/p/0.1', 'a/p/2.2', 'b/in/q']), [true, false, true]);
    const known = await store.getMany(['a/p/0.0', 'a/p/1.0', 'a/p/9.9'], [8, 0, 8]);
    t.deepEqual(
      known.map((b) => (b ? [...b] : null)),
      [[...bytes(8, 1)], [], null],
      'getMany with known sizes',
    );
    await store.delete(['a/p/1.0'], [0]);
    t.deepEqual(await store.existsMany(['a/p/1.0']), [false], 'delete with known sizes');
    await store.delete(['a/p/0.1', 'a/p/9.9']);
    t.deepEqual(await store.existsMany(['a/p/0.0', 'a/p/0.1']), [true, false]);
    await store.write('a/in/k', 0, bytes(12)); // unsealed blobs go with their prefix too
    await store.deletePrefix('a/');
    t.deepEqual(await store.existsMany(['a/p/0.0', 'a/p/1.0', 'b/in/q']), [false, false, true]);
    t.deepEqual([...(await store.read('a/in/k', 0, 2))], [0, 0]);
    await t.throwsAsync(store.write('../escape', 0, bytes(1)), { instanceOf: RangeError });
    await store.close();
  });
}

test('redis: a blob leaves no keys behind after delete', async (t) => {
  const client = connectRedis(redis.url);
  const store = new RedisBlobStore(client, 'redis', { chunk: 10, namespace: 'leak:' });
  await store.putMany([{ name: 'x/p/0.0', data: bytes(35) }]);
  t.is((await client.keys('leak:*')).length, 5, 'header + 4 chunks');
  await store.delete(['x/p/0.0']);
  t.deepEqual(await client.keys('leak:*'), []);
  await client.quit();
});

test('fs: large positional writes (the thread-pool path) and small ones interleave into one blob', async (t) => {
  const store = stores[0]![1]();
  const big = bytes(700 << 10, 5); // past the store's inline-write size
  const small = bytes(1000, 9);
  await Promise.all([store.write('j/in/q', 1000, big), store.write('j/in/q', 0, small), store.write('j/in/q', 1000 + big.length, big)]);
  const size = 1000 + 2 * big.length;
  await store.seal('j/in/q', { size });
  const all = await store.read('j/in/q', 0, size);
  t.deepEqual(all.subarray(0, 1000), small);
  t.deepEqual(all.subarray(1000, 1000 + big.length), big);
  t.deepEqual(all.subarray(1000 + big.length), big);
  await store.close();
});
