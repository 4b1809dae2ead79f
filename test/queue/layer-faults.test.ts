import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runLayer, type LayerRequest } from '@longattn/engine';
import { connectRedis, jobKeys, runLayerQueue } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { tempDir } from '../support/cli.ts';
import { prepare, type LayerCase } from '../support/layer-cases.ts';
import { onlyJobId, startService, until, type Service } from './support.ts';

/**
 * A layer job on the queue engine survives its workers being killed with SIGKILL in each stage
 * that is only a layer's (docs/flow.md, "Layers on the queue"): one worker killed while it
 * projects K/V and Q (JOB-p jobs), another while it projects O (JOB-y jobs); a fresh worker
 * finishes the job and Y, O and LSE are bitwise the local engine's. Every blob is removed after.
 */

const CASE: LayerCase = {
  name: 'self S=300 H=4 Hk=2 D=12 d=29 biases o_proj causal',
  spec: { B: 1, S: 300, Skv: 300, dModel: 29, dKv: 29, H: 4, Hk: 2, D: 12, causal: true, theta: 10000 },
  biases: true,
  oProj: true,
  options: { causal: true },
  blocks: { blockQ: 64, blockK: 128 },
};

const SAME = { backend: 'js', projection: 'js' } as const;

test('layer --engine queue: workers killed mid-projection (K/V/Q stage, then o_proj stage) — a fresh worker finishes, Y/O/LSE bitwise local', async (t) => {
  const redis = await startRedis();
  const blobDir = tempDir('longattn-layer-faults-blobs-');
  const dir = tempDir('longattn-layer-faults-');
  const services: Service[] = [];
  const r = connectRedis(redis.url);
  try {
    const { request } = prepare(CASE, dir);
    const outs = (name: string): LayerRequest =>
      request(`${name}-y.npy`, { attnOut: join(dir, `${name}-o.npy`), lse: join(dir, `${name}-lse.npy`), ...SAME });
    await runLayer(outs('local'), { threads: 1 });
    const blobs = ['--blobs', `fs:${blobDir}`];
    services.push(await startService('reducer', redis.url, blobs));
    // Victim 1 sleeps 1.5 s in every projection block: certainly mid-projection when killed.
    const first = await startService('worker', redis.url, [...blobs, '--throttle-ms', '1500']);
    const run = runLayerQueue(outs('queue'), { redis: redis.url, blobs: `fs:${blobDir}`, blocksPerJob: 1 });
    const id = await until('the job', () => onlyJobId(r));
    await until('a projection job taken', async () => ((await r.hget(jobKeys.hash(id), 'startedAt')) ? true : undefined));
    t.is(await r.scard(jobKeys.projected(id)), 0, 'killed before it recorded a projected block');
    await first.kill();

    // Victim 2 (150 ms per block and per tile) finishes the first stage and the attention, then is
    // killed as the o_proj stage starts.
    const second = await startService('worker', redis.url, [...blobs, '--throttle-ms', '150']);
    await until('the o_proj stage', async () => ((await r.hget(jobKeys.hash(id), 'outAt')) ? true : undefined), 60_000);
    await second.kill();
    t.is(await r.hget(jobKeys.hash(id), 'state'), 'queued', 'killed before the job was done');

    services.push(await startService('worker', redis.url, blobs));
    const result = await run;
    t.is(result.engine, 'queue');
    for (const [what, local, queued] of [
      ['Y', 'local-y.npy', 'queue-y.npy'],
      ['O', 'local-o.npy', 'queue-o.npy'],
      ['LSE', 'local-lse.npy', 'queue-lse.npy'],
    ])
      t.true(readFileSync(join(dir, queued!)).equals(readFileSync(join(dir, local!))), `${what} bits`);
    await until('every blob removed', async () => (readdirSync(blobDir).length === 0 ? true : undefined), 20_000);
    t.deepEqual(readdirSync(blobDir), []);
  } finally {
    await r.quit();
    await Promise.all(services.map((s) => s.kill()));
    await redis.stop();
  }
});
