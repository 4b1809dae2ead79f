import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runLocal, type JobRequest } from '@longattn/engine';
import { runQueue } from '@longattn/engine/queue';
import { readTensor } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { longattn, tempDir } from '../support/cli.ts';
import { startService, type Service } from '../queue/support.ts';
import { LINEAR_CASES, maxAbsDiff, writeCase, type LinearCase } from './reference.ts';

const dir = tempDir('longattn-linear-queue-');
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function request(c: LinearCase, paths: { q: string; k: string; v: string }, out: string): JobRequest {
  return {
    ...paths,
    out: join(dir, out),
    options: { layout: c.layout, causal: c.causal, linear: true },
    ...(c.blockQ ? { blockQ: c.blockQ, blockK: c.blockK! } : {}),
  };
}

test('queue engine (real redis-server, reducer and 1 then 2 worker processes; Redis and fs blobs): bit-identical to the local engine and within the float64 bound', async (t) => {
  const redis = await startRedis();
  const services: Service[] = [];
  const blobs = `fs:${join(dir, 'blobs')}`;
  try {
    services.push(await startService('reducer', redis.url, ['--blobs', blobs]));
    const cases = [LINEAR_CASES[0]!, LINEAR_CASES[2]!]; // non-causal GQA bhsd; causal Sq > Sk bshd B = 2
    const prepared = cases.map((c) => ({ c, ...writeCase(join(dir, c.name), c) }));
    const local = new Map<string, Buffer>();
    for (const { c, paths } of prepared) {
      const r = request(c, paths, `${c.name}-local.npy`);
      await runLocal(r, { threads: 2 });
      local.set(c.name, readFileSync(r.out));
    }
    for (const workers of [1, 2]) {
      services.push(await startService('worker', redis.url, ['--blobs', blobs]));
      for (const { c, paths, ref, bound } of prepared) {
        for (const [store, options] of [
          ['redis', { tilesPerJob: 1 }], // one tile per job: a linear q-block is still never split,
          ['fs', { blobs }],
        ] as const) {
          const r = request(c, paths, `${c.name}-${workers}-${store}.npy`);
          const result = await runQueue(r, { redis: redis.url, ...options });
          t.is(result.approximation, 'linear');
          t.is(result.engine, 'queue');
          t.true(readFileSync(r.out).equals(local.get(c.name)!), `${c.name}, ${workers} workers, ${store} blobs: same bits as local`);
          const err = maxAbsDiff(readTensor(r.out).data, ref);
          t.true(err <= bound, `${c.name}: ${err} > ${bound}`);
        }
      }
    }
    // The CLI on the queue engine labels it too.
    const { c, paths } = prepared[0]!;
    const cli = await longattn([
      'run',
      '--q',
      paths.q,
      '--k',
      paths.k,
      '--v',
      paths.v,
      '--out',
      join(dir, 'cli.npy'),
      '--linear',
      '--engine',
      'queue',
      '--redis',
      redis.url,
      '--json',
    ]);
    t.is(cli.code, 0, cli.stderr);
    t.is((JSON.parse(cli.stdout) as { approximation: string }).approximation, 'linear');
    t.true(readFileSync(join(dir, 'cli.npy')).length > 0 && c.name.length > 0);
    // Detached: `result --lse` is refused for a linear job (exit 2, nothing written), `result --out` collects it.
    const inputs = ['--q', paths.q, '--k', paths.k, '--v', paths.v, '--block-q', String(c.blockQ), '--block-k', String(c.blockK)];
    const detached = await longattn([
      'run',
      ...inputs,
      '--out',
      join(dir, 'unused.npy'),
      '--linear',
      '--engine',
      'queue',
      '--redis',
      redis.url,
      '--detach',
    ]);
    t.is(detached.code, 0, detached.stderr);
    const job = detached.stdout.trim();
    let lse = await longattn([
      'result',
      job,
      '--out',
      join(dir, 'detached.npy'),
      '--lse',
      join(dir, 'detached-lse.npy'),
      '--redis',
      redis.url,
    ]);
    for (let i = 0; i < 200 && lse.code !== 2 && /is (queued|running|uploading)/.test(lse.stderr); i++) {
      await new Promise((r) => setTimeout(r, 250));
      lse = await longattn([
        'result',
        job,
        '--out',
        join(dir, 'detached.npy'),
        '--lse',
        join(dir, 'detached-lse.npy'),
        '--redis',
        redis.url,
      ]);
    }
    t.is(lse.code, 2, lse.stderr);
    t.regex(lse.stderr, /^longattn: --lse: job \S+ is linear attention \(an approximation\): it has no LSE/);
    t.false(existsSync(join(dir, 'detached.npy')));
    const collected = await longattn(['result', job, '--out', join(dir, 'detached.npy'), '--redis', redis.url]);
    t.is(collected.code, 0, collected.stderr);
    t.true(readFileSync(join(dir, 'detached.npy')).equals(local.get(c.name)!), 'detached result: same bits as local');
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
  }
});
