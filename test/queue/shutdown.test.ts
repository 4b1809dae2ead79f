import test from 'ava';
import { QueueEngine } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { localBytes, oddInputs, startService, until, type Service } from './support.ts';

test('SIGTERM: a worker finishes its in-flight tiles and exits 0; past --grace-ms it hands them back', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const services: Service[] = [];
  const engine = await QueueEngine.connect(redis.url);
  try {
    const local = await localBytes(inputs);
    services.push(await startService('reducer', redis.url));
    const request = inputs.request('queue');
    const { manifest, output } = await engine.submit(request, { tilesPerJob: 2, createOutput: true });
    const computed = async () => (await engine.status(manifest.id)).computedTiles;

    // Finishes: 1.5 s per tile, default grace (20 s).
    const finisher = await startService('worker', redis.url, ['--backend', 'js', '--throttle-ms', '1500']);
    await until('the finisher to take a job', async () => ((await engine.status(manifest.id)).state === 'running' ? true : undefined));
    t.is(await finisher.stop(), 0, 'exit 0 after SIGTERM');
    t.true((await computed()) > 0, 'its in-flight tiles were finished and stored');
    t.regex(finisher.log(), /SIGTERM, finishing in-flight jobs[\s\S]*stopped/);

    // Hands back: 60 s per tile, 300 ms of grace.
    const before = await computed();
    const quitter = await startService('worker', redis.url, ['--backend', 'js', '--throttle-ms', '60000', '--grace-ms', '300']);
    await until('the quitter to take a job', async () =>
      /queue bull:/.test(quitter.log()) && (await engine.status(manifest.id)).state === 'running' ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 500));
    const stopping = Date.now();
    t.is(await quitter.stop(), 0);
    t.true(Date.now() - stopping < 4000, `stopped in ${Date.now() - stopping} ms, well before the tile would end`);
    t.regex(quitter.log(), /handed back tile job/);
    t.is(await computed(), before, 'nothing computed by the quitter');

    services.push(await startService('worker', redis.url, ['--backend', 'js']));
    const status = await engine.wait(manifest.id);
    await engine.download(manifest.id, output!);
    t.true(inputs.read(request.out).equals(local.out));
    t.is(status.computedTiles, status.progress.totalTiles, 'no tile computed twice');
  } finally {
    await engine.close();
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
    inputs.cleanup();
  }
});
