/**
 * Issue 8.10: a job computes on one backend. `auto` is resolved once per job (the submitter's
 * pick); workers that cannot run it leave its tiles to one that can, and `status` says which
 * backend the job needs when nobody can.
 */
import test from 'ava';
import { runLocal } from '@longattn/engine';
import { connectRedis, QueueEngine, runQueue } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { longattn } from '../support/cli.ts';
import { oddInputs, startService, until, type Service } from './support.ts';

test('an auto job with an ort and a wasm worker up: one backend everywhere, bytes equal to the local engine on it', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const services: Service[] = [];
  try {
    services.push(
      await startService('reducer', redis.url),
      await startService('worker', redis.url, ['--backend', 'ort']),
      await startService('worker', redis.url, ['--backend', 'wasm']),
    );
    const request = inputs.request('auto', { backend: 'auto' });
    const result = await runQueue(request, { redis: redis.url, tilesPerJob: 2 });
    t.false(result.backend.includes(','), `one backend: ${result.backend}`);
    t.true(['ort', 'wasm'].includes(result.backend), result.backend);
    const local = inputs.request('local', { backend: result.backend });
    await runLocal(local, { threads: 1 });
    t.true(inputs.read(request.out).equals(inputs.read(local.out)), `O equals runLocal on ${result.backend}`);
    t.true(inputs.read(request.lse!).equals(inputs.read(local.lse!)), 'LSE');
    const other = result.backend === 'ort' ? 1 : 2; // the worker serving the other backend handed every tile back
    t.regex(services[other]!.log(), /\(its jobs only\)/);
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
    inputs.cleanup();
  }
});

test('nobody runs the job’s backend: its tiles wait, status names the backend it needs and why workers declined', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs({ H: 1, Hk: 1, Sq: 40, Sk: 40, D: 8 });
  const client = connectRedis(redis.url);
  const services: Service[] = [];
  try {
    services.push(await startService('reducer', redis.url), await startService('worker', redis.url, ['--backend', 'wasm']));
    const engine = await QueueEngine.connect(redis.url);
    const { manifest } = await engine.submit(inputs.request('ort', { backend: 'ort', blockQ: 16, blockK: 16 }), { tilesPerJob: 2 });
    await until('a worker to decline it', async () => ((await engine.status(manifest.id)).waiting ? true : undefined));
    const status = await longattn(['status', manifest.id, '--redis', redis.url]);
    t.is(status.code, 0, status.stderr);
    t.regex(status.stdout, /backend ort/);
    t.regex(status.stdout, /\n {2}waiting: needs backend ort; declined by 1 worker \(worker-\S+: serves wasm only\)\n$/);
    t.is((await engine.status(manifest.id)).progress.doneTiles, 0);

    // An auto worker that cannot load the backend declines too, saying why.
    const { manifest: webgpu } = await engine.submit(inputs.request('gpu', { backend: 'gpujs:webgpu', blockQ: 16, blockK: 16 }), {
      tilesPerJob: 2,
    });
    services.push(await startService('worker', redis.url));
    await until('the auto worker to decline the webgpu job', async () =>
      /gpujs:webgpu cannot run here/.test((await engine.status(webgpu.id)).waiting ?? '') ? true : undefined,
    );
    t.is((await engine.status(webgpu.id)).state, 'queued', 'not failed');
    // An auto worker that loads a GPU backend only in software declines it, unless started with --allow-software.
    const { manifest: soft } = await engine.submit(inputs.request('soft', { backend: 'gpujs:cpu', blockQ: 16, blockK: 16 }), {
      tilesPerJob: 2,
    });
    await until('the auto worker to decline the software gpujs job', async () =>
      /gpujs:cpu reaches only cpu.* here, no GPU \(worker not started with --allow-software\)/.test(
        (await engine.status(soft.id)).waiting ?? '',
      )
        ? true
        : undefined,
    );
    t.is((await engine.status(soft.id)).progress.doneTiles, 0);
    services.push(await startService('worker', redis.url, ['--allow-software']));
    const softResult = await engine.wait(soft.id);
    t.deepEqual(softResult.backends, ['gpujs:cpu']);
    // Once a worker that runs ort comes, the first job finishes on ort.
    const result = await engine.wait(manifest.id);
    t.deepEqual(result.backends, ['ort']);
    t.is(result.waiting, undefined);
    await engine.cancel(webgpu.id);
    await engine.close();
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});
