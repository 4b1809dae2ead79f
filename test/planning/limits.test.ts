import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { connectRedis } from '@longattn/engine/queue';
import { writeTensor } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { longattn, tempDir } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';

/** Q/K/V [n, D] float32 in a fresh temp dir; returns the run flags for them and the dir. */
function inputs(n: number, D: number): { dir: string; args: string[] } {
  const dir = tempDir('longattn-limits-');
  for (const [name, seed] of [
    ['q', 1],
    ['k', 2],
    ['v', 3],
  ] as const)
    writeTensor(join(dir, `${name}.npy`), [n, D], randomTensor(n * D, seed));
  return {
    dir,
    args: ['run', '--q', join(dir, 'q.npy'), '--k', join(dir, 'k.npy'), '--v', join(dir, 'v.npy'), '--out', join(dir, 'o.npy')],
  };
}

const onlyInputs = (dir: string) => readdirSync(dir).sort();

test('--block-q 1048576 --block-k 1048576 on 16384 tokens: exit 2 naming the flag, before any work, nothing written', async (t) => {
  const { dir, args } = inputs(16384, 8);
  const r = await longattn([...args, '--causal', '--block-q', '1048576', '--block-k', '1048576']);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /^longattn: --block-q: tiles of 16384×16384 exceed the limit of 4194304 rows×keys per tile \(LONGATTN_MAX_TILE_AREA\)/);
  t.is(r.stderr.trim().split('\n').length, 1, 'one line');
  t.deepEqual(onlyInputs(dir), ['k.npy', 'q.npy', 'v.npy']);
});

test('the limits come from the environment: a smaller tile area or merge budget refuses what the default allows', async (t) => {
  const { dir, args } = inputs(3000, 4);
  const ok = await longattn([...args, '--block-q', '64', '--block-k', '2048', '--backend', 'js', '--quiet']);
  t.is(ok.code, 0, ok.stderr);
  const area = await longattn([...args, '--block-q', '64', '--block-k', '2048', '--backend', 'js'], {
    env: { LONGATTN_MAX_TILE_AREA: '65536' },
  });
  t.is(area.code, 2);
  t.regex(area.stderr, /^longattn: --block-k: tiles of 64×2048 exceed the limit of 65536 rows×keys per tile/);
  // blockK = 1 on 3000 keys: 3000 partials per q-block of 64 rows, 3000·(64·5·4 + 512) bytes ≈ 5.2 MiB.
  const merge = await longattn([...args, '--block-q', '64', '--block-k', '1', '--backend', 'js'], {
    env: { LONGATTN_MAX_MERGE_BYTES: String(4 << 20) },
  });
  t.is(merge.code, 2);
  t.regex(
    merge.stderr,
    /^longattn: --block-k: 3000 key blocks per q-block would hold 5 MiB of partials for one merge, over the limit of 4 MiB/,
  );
  const bad = await longattn([...args], { env: { LONGATTN_MAX_TILE_AREA: 'lots' } });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^longattn: LONGATTN_MAX_TILE_AREA: expected an integer ≥ 1, got "lots"/);
  t.deepEqual(onlyInputs(dir), ['k.npy', 'o.npy', 'q.npy', 'v.npy']);
});

test('queue engine: 33.5M tiles (--block-q 1 --block-k 1 on 8192 tokens) refused at submit, exit 2, nothing left in Redis', async (t) => {
  const redis = await startRedis();
  const client = connectRedis(redis.url);
  try {
    const { dir, args } = inputs(8192, 1);
    const r = await longattn([...args, '--causal', '--engine', 'queue', '--redis', redis.url, '--block-q', '1', '--block-k', '1']);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /^longattn: --block-k: 33558528 tiles exceed the queue engine's limit of 4194304 per job \(LONGATTN_MAX_JOB_TILES\)/);
    // Only BullMQ's queue metadata (written on connect): no job record, no blob, no flow.
    t.deepEqual(await client.keys('*'), ['bull:{longattn}:jobs:meta'], 'nothing of the job in Redis');
    t.false(existsSync(join(dir, 'o.npy')));
    // The same job within a raised limit is accepted (submitted detached, then cancelled).
    const raised = await longattn(
      [...args, '--causal', '--engine', 'queue', '--redis', redis.url, '--block-q', '64', '--block-k', '64', '--detach'],
      {
        env: { LONGATTN_MAX_JOB_TILES: '8256' },
      },
    );
    t.is(raised.code, 0, raised.stderr);
    const over = await longattn(
      [...args, '--causal', '--engine', 'queue', '--redis', redis.url, '--block-q', '64', '--block-k', '64', '--detach'],
      {
        env: { LONGATTN_MAX_JOB_TILES: '8255' },
      },
    );
    t.is(over.code, 2); // 128 q-blocks × 129 / 2 = 8256 tiles
    t.regex(over.stderr, /--block-k: 8256 tiles exceed the queue engine's limit of 8255/);
  } finally {
    client.disconnect();
    await redis.close();
  }
});
