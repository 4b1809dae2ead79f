import test from 'ava';
import { connectRedis, jobKeys } from '@longattn/engine/queue';
import type { QBlockPlan, Tile } from '@longattn/attention';
import { recordDone } from '../../packages/engine/src/queue/progress.ts';
import { startRedis } from '../../scripts/redis-test-server.ts';

/** Tiles with only the field recordDone reads (their FLOPs), `count` of them at `flops` each. */
const tiles = (count: number, flops: number) => Array.from({ length: count }, () => ({ flops }) as Tile);

test('recordDone: a split q-block is complete once, when its parts’ tiles are all recorded, however often a part is recorded or resent', async (t) => {
  const redis = await startRedis();
  const client = connectRedis(redis.url);
  const job = 'la-test-0000000001';
  try {
    await client.hset(jobKeys.hash(job), 'state', 'queued');
    // q-block 3 has 5 tiles, split into parts [0, 2) and [2, 5); q-block 4 (2 tiles) is whole in the second job.
    const first = { qi: 3, from: 0, tiles: 2, of: 5 };
    const second = { qi: 3, from: 2, tiles: 3, of: 5 };
    const whole = { index: 4, tiles: tiles(2, 10) } as unknown as QBlockPlan;
    t.deepEqual(await recordDone(client, job, 'w:a', 'js|cpu', [], tiles(2, 7), [first]), {
      state: 'queued',
      complete: [],
      firsts: new Map(),
    });
    // The same part run again (a retry after its worker died past its record) counts nothing more.
    t.deepEqual(await recordDone(client, job, 'w:b', 'js|cpu', [], tiles(2, 7), [first]), {
      state: 'queued',
      complete: [],
      firsts: new Map(),
    });
    t.is(await client.hget(jobKeys.hash(job), 's:3'), '2', 'the first part counted once');
    t.deepEqual(await recordDone(client, job, 'w:a', 'js|cpu', [whole], tiles(3, 7), [second]), {
      state: 'queued',
      complete: [3],
      firsts: new Map([[3, [0, 2]]]),
    });
    t.is(await client.hget(jobKeys.hash(job), 's:3'), null, 'the count is gone once complete');
    t.is(await client.hget(jobKeys.hash(job), 'r:3'), '0,2', 'the runs stay until the merge marks the q-block (qblock-merge.test.ts)');
    t.deepEqual(
      await recordDone(client, job, 'w:b', 'js|cpu', [], tiles(3, 7), [second]),
      { state: 'queued', complete: [], firsts: new Map() },
      'completes once',
    );
    t.deepEqual((await client.smembers(jobKeys.reduced(job))).sort(), ['4'], 'only the whole q-block is marked: the merge marks q-block 3');
    // Progress counts every run's tiles (4 records: 2 + 2 + 2 whole + 3 + 3), as before.
    t.is(await client.hget(jobKeys.hash(job), 'tiles'), '12');
    // Parts recorded out of order: the completing record returns every run's first tile, ascending.
    const parts = [
      { qi: 6, from: 7, tiles: 2, of: 9 },
      { qi: 6, from: 0, tiles: 3, of: 9 },
      { qi: 6, from: 3, tiles: 4, of: 9 },
    ];
    t.deepEqual((await recordDone(client, job, 'w:a', 'js|cpu', [], tiles(2, 7), [parts[0]!])).complete, []);
    t.deepEqual((await recordDone(client, job, 'w:b', 'js|cpu', [], tiles(3, 7), [parts[1]!])).complete, []);
    t.deepEqual(await recordDone(client, job, 'w:a', 'js|cpu', [], tiles(4, 7), [parts[2]!]), {
      state: 'queued',
      complete: [6],
      firsts: new Map([[6, [0, 3, 7]]]),
    });
    // A job that ended: nothing counts, and nothing is complete.
    await client.hset(jobKeys.hash(job), 'state', 'cancelled');
    const other = { qi: 5, from: 0, tiles: 1, of: 1 };
    t.deepEqual(await recordDone(client, job, 'w:a', 'js|cpu', [], tiles(1, 7), [other]), {
      state: 'cancelled',
      complete: [],
      firsts: new Map(),
    });
    t.is(await client.hget(jobKeys.hash(job), 's:5'), null);
    await client.del(jobKeys.hash(job));
    t.deepEqual(
      await recordDone(client, job, 'w:a', 'js|cpu', [], tiles(1, 7), [other]),
      { state: '', complete: [], firsts: new Map() },
      'gone',
    );
  } finally {
    client.disconnect();
    await redis.close();
  }
});
