import test from 'ava';
import { QueueEngine, runQueue } from '@longattn/engine/queue';
import { readTensor } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { longattn } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';
import { bruteWithBound, exactness } from '../support/reference64.ts';
import { localBytes, oddInputs, startService, type Service } from '../queue/support.ts';
import { startS3 } from './support.ts';

const BUCKET = 'longattn-data';

test.serial(
  's3 data movement: a tile job of every q-block of a kv head writes its output rows as one object each for O and LSE (not one per q-block); bits equal runLocal’s and meet the float64 rule',
  async (t) => {
    const [redis, s3] = await Promise.all([startRedis(), startS3([BUCKET])]);
    Object.assign(process.env, s3.env);
    // Odd shape: 5 q-blocks of 64 rows per head (the last 44), 4 query heads over 2 kv heads, 5 key blocks of 128 (the last 5).
    const shape = { H: 4, Hk: 2, Sq: 300, Sk: 517, D: 24 };
    const inputs = oddInputs(shape);
    const services: Service[] = [];
    try {
      const local = await localBytes(inputs);
      const blobs = `s3://${BUCKET}/jobs`;
      services.push(
        await startService('worker', redis.url, ['--backend', 'js', '--blobs', blobs], 'cli'),
        await startService('reducer', redis.url, ['--blobs', blobs], 'cli'),
      );
      const request = inputs.request('s3');
      // One tile job per kv head (a job never spans two: batchPlan) holds every q-block of its two
      // query heads (plan order): their rows are adjacent in O and LSE, from query head 0 and 2.
      const { jobId } = await runQueue(request, { redis: redis.url, blobs, jobFlops: 1e12, detach: true });
      const engine = await QueueEngine.connect(redis.url, { blobs: [blobs] });
      try {
        t.is((await engine.wait(jobId)).state, 'done');
      } finally {
        await engine.close();
      }
      const keys = await s3.keys(BUCKET);
      const parts = (blob: string) => keys.filter((k) => k.startsWith(`jobs/${jobId}/out/${blob}!w/`));
      const at = (offset: number) => String(offset).padStart(16, '0');
      const head2 = { o: 2 * shape.Sq * shape.D * 4, lse: 2 * shape.Sq * 4 }; // float32 bhsd rows of query head 2
      t.deepEqual(parts('o'), [`jobs/${jobId}/out/o!w/${at(0)}`, `jobs/${jobId}/out/o!w/${at(head2.o)}`], keys.join(' '));
      t.deepEqual(parts('lse'), [`jobs/${jobId}/out/lse!w/${at(0)}`, `jobs/${jobId}/out/lse!w/${at(head2.lse)}`], keys.join(' '));

      const collected = await longattn([
        'result',
        jobId,
        '--redis',
        redis.url,
        '--blobs',
        blobs,
        '--out',
        request.out,
        '--lse',
        request.lse!,
      ]);
      t.is(collected.code, 0, collected.stderr);
      t.true(inputs.read(request.out).equals(local.out), 'O bitwise equal to runLocal');
      t.true(inputs.read(request.lse!).equals(local.lse), 'LSE bitwise equal to runLocal');
      const { H, Hk, Sq, Sk, D } = shape;
      const want = bruteWithBound(
        { layout: 'bhsd', B: 1, H, Hk, Sq, Sk, D, causal: true },
        randomTensor(H * Sq * D, 21),
        randomTensor(Hk * Sk * D, 22),
        randomTensor(Hk * Sk * D, 23),
      );
      const got = { out: readTensor(request.out).data, lse: readTensor(request.lse!).data };
      const e = exactness(got, want);
      t.true(e.exact, `max |out − ref| = ${e.err} (bound ${want.bound}), max |lse − ref| = ${e.lseErr}`);
      t.deepEqual(await s3.keys(BUCKET), [], 'result removed the job’s objects');
    } finally {
      await Promise.all(services.map((s) => s.kill()));
      await Promise.all([redis.close(), s3.close()]);
      inputs.cleanup();
    }
  },
);
