import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runInspect, type InspectRequest, type InspectResult } from '@longattn/engine';
import { connectRedis, QueueEngine, runInspectQueue } from '@longattn/engine/queue';
import { readTensor, uniformF32, writeTensor } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { referenceInspect, referenceTop, type RefProblem } from '../inspect/reference.ts';
import { longattn, tempDir } from '../support/cli.ts';
import { startService, until, type Service } from './support.ts';

/**
 * Inspect as a queue job kind (docs/flow.md, "Inspect on the queue"), with a real redis-server,
 * worker and reducer processes: the report and every output file bitwise equal to the local
 * engine's on an odd shape (GQA, causal + window, 150 fully masked rows, two chunks per head),
 * for 1 and 2 workers and for Redis and fs blobs; the statistics against float64 definitions;
 * a cancel in the middle of the statistics pass leaves nothing behind.
 */

const problem: Omit<RefProblem, 'q' | 'k'> = {
  layout: 'bhsd',
  B: 1,
  H: 4,
  Hk: 2,
  Sq: 1300,
  Sk: 1150,
  D: 7,
  causal: true,
  window: [60, -1],
};

function writeInputs(dir: string): RefProblem {
  const { H, Hk, Sq, Sk, D } = problem;
  const pr = { ...problem, q: uniformF32(H * Sq * D, 71), k: uniformF32(Hk * Sk * D, 72) };
  writeTensor(join(dir, 'q.npy'), [H, Sq, D], pr.q);
  writeTensor(join(dir, 'k.npy'), [Hk, Sk, D], pr.k);
  return pr;
}

function request(dir: string, name: string, extra: Partial<InspectRequest> = {}): InspectRequest {
  return {
    q: join(dir, 'q.npy'),
    k: join(dir, 'k.npy'),
    options: { causal: true, window: { left: 60, right: Infinity } },
    rows: { from: 140, to: 160 }, // rows 140–149 see no key, 150–159 do
    topK: 5,
    sinksStat: 3,
    localStat: 9,
    weightsOut: join(dir, `${name}-w.npy`),
    received: join(dir, `${name}-r.npy`),
    map: join(dir, `${name}-m.png`),
    mapSize: 17,
    backend: 'js',
    blockQ: 64,
    blockK: 128,
    ...extra,
  };
}

/** A result's bytes to compare: the report's JSON and each file. */
function bytesOf(result: InspectResult): { report: string; files: Buffer[] } {
  const { files } = result;
  return { report: JSON.stringify(result.report), files: [files.received!, files.weightsOut!, files.map!].map((p) => readFileSync(p)) };
}

/** A reducer and `workers` workers (given `blobs` besides the queue's Redis) around `body`; `grow` adds a worker. */
async function withCluster<T>(url: string, workers: number, blobs: string[], body: (grow: () => Promise<void>) => Promise<T>): Promise<T> {
  const services: Service[] = [];
  try {
    services.push(await startService('reducer', url, blobs));
    const grow = async () => void services.push(await startService('worker', url, blobs));
    for (let i = 0; i < workers; i++) await grow();
    return await body(grow);
  } finally {
    await Promise.all(services.map((s) => s.stop()));
  }
}

test('inspect --engine queue: report and files bitwise the local engine’s, for 1 and 2 workers, Redis and fs blobs; exact against float64', async (t) => {
  const redis = await startRedis();
  const dir = tempDir();
  const blobDir = tempDir('longattn-inspect-blobs-');
  try {
    const pr = writeInputs(dir);
    const ref = referenceInspect(pr, 3, 9);
    // An --lse for the CLI run: the float64 reference's, rounded to float32.
    writeTensor(join(dir, 'lse.npy'), [4, 1300], Float32Array.from(ref.flatMap((h) => [...h.lse])));
    const local = await runInspect(request(dir, 'local'), { threads: 2 });
    const want = bytesOf(local);
    // One cluster (its services may open the fs store and the queue's Redis): 1 worker with Redis blobs,
    // one chunk per job (8 chunk jobs); then 2 workers with fs blobs (the chunk jobs split between them);
    // then at blockK 32 with one tile per tile job, so the LSE pass's q-blocks are split over tile jobs and
    // the reducer merges their [rows, 0] partials; then the CLI with --lse.
    const fs = ['--blobs', `fs:${blobDir}`];
    const { one, two, split, cli } = await withCluster(redis.url, 1, fs, async (grow) => {
      const one = await runInspectQueue(request(dir, 'one'), { redis: redis.url, chunksPerJob: 1 });
      await grow();
      const two = await runInspectQueue(request(dir, 'two'), { redis: redis.url, blobs: `fs:${blobDir}`, chunksPerJob: 1 });
      const split = await runInspectQueue(request(dir, 'split', { blockK: 32 }), {
        redis: redis.url,
        blobs: `fs:${blobDir}`,
        tilesPerJob: 1,
      });
      const r = request(dir, 'cli');
      const cli = await longattn([
        'inspect',
        ...['--q', r.q, '--k', r.k, '--lse', join(dir, 'lse.npy'), '--causal', '--window', '60,-1', '--rows', '140:160', '--top-k', '5'],
        ...['--sinks-stat', '3', '--local-stat', '9', '--map-size', '17', '--json', '--engine', 'queue', '--redis', redis.url],
        ...['--received', r.received!, '--weights-out', r.weightsOut!, '--map', r.map!],
      ]);
      return { one, two, split, cli };
    });
    for (const [name, result] of [
      ['1 worker', one],
      ['2 workers', two],
    ] as const) {
      const got = bytesOf(result);
      t.is(got.report, want.report, `${name}: report`);
      for (const [i, what] of ['received', 'weights', 'map'].entries())
        t.true(got.files[i]!.equals(want.files[i]!), `${name}: ${what} bits`);
      t.is(result.lseFrom, 'pass');
      t.is(result.chunks, 8);
    }
    t.is(two.threads, 2, 'both workers computed');
    const splitWant = bytesOf(await runInspect(request(dir, 'local-split', { blockK: 32 }), { threads: 2 }));
    const splitGot = bytesOf(split);
    t.is(splitGot.report, splitWant.report, 'split q-blocks: report');
    for (const [i, what] of ['received', 'weights', 'map'].entries())
      t.true(splitGot.files[i]!.equals(splitWant.files[i]!), `split q-blocks: ${what} bits`);
    // Exact: the statistics, top lists and received vector against the definitions (tolerance as test/inspect/exact.test.ts:
    // p carries float32 LSE rounding, ≈ 1e-6 relative here).
    const close = (a: number, b: number, scale = 1) => Math.abs(a - b) <= 1e-5 * Math.max(1, scale, Math.abs(b));
    const received = readTensor(one.files.received!).data;
    one.report.heads.forEach((head, x) => {
      const r = ref[x]!;
      t.is(head.rows, 1150, 'rows that see a key');
      t.is(r.rows, 1150);
      for (const key of ['entropy', 'sinkShare', 'localShare'] as const) t.true(close(head[key]!, r[key]!), `head ${x} ${key}`);
      t.true(close(head.meanDistance!, r.meanDistance!, pr.Sk), `head ${x} meanDistance`);
      for (let j = 0; j < pr.Sk; j++) if (!close(received[x * pr.Sk + j]!, r.received[j]!)) t.fail(`head ${x} received ${j}`);
      t.is(head.top.length, 20);
      for (const row of head.top) {
        const top = referenceTop(pr, x, row.row, r.p[row.row]!, 5);
        if (row.row < 150) t.deepEqual([row.lse, row.keys], [null, []], `row ${row.row} sees no key`);
        else {
          t.deepEqual(
            row.keys.map(([j]) => j),
            top.map(([j]) => j),
          );
          for (const [s, [, p]] of row.keys.entries()) t.true(close(p, top[s]![1]), `head ${x} row ${row.row} top ${s}`);
        }
      }
    });
    // The CLI with --lse (the statistics pass alone) equals the local engine given the same --lse.
    const localLse = bytesOf(await runInspect(request(dir, 'local-lse', { lse: join(dir, 'lse.npy') }), { threads: 1 }));
    t.is(cli.code, 0, cli.stderr);
    const { run, ...report } = JSON.parse(cli.stdout);
    t.is(run.lseFrom, 'file');
    t.is(JSON.stringify(report), localLse.report);
    const r = request(dir, 'cli');
    for (const [i, p] of [r.received!, r.weightsOut!, r.map!].entries())
      t.true(readFileSync(p).equals(localLse.files[i]!), `cli file ${p}`);
    const client = connectRedis(redis.url);
    t.deepEqual(await client.keys('{longattn}:job:*'), [], 'every job removed after its result was collected');
    t.deepEqual(await client.keys('longattn:blob:*'), [], 'no Redis blobs left');
    t.deepEqual(readdirSync(blobDir), [], 'no fs blobs left');
    client.disconnect();
  } finally {
    await redis.close();
  }
});

test('cancelling an inspect job in its statistics pass: rejected, no file written, no blob, queue job or key left', async (t) => {
  const redis = await startRedis();
  const dir = tempDir();
  const blobDir = tempDir('longattn-inspect-blobs-');
  const client = connectRedis(redis.url);
  try {
    // 8 heads of 8192 × 8192, no mask, D = 32: 64 chunk jobs of 0.5 GFLOP each (score tiles: ~0.1 s
    // each here), so the job is still running when the first is stored; a made-up LSE (zeros) is enough here.
    writeTensor(join(dir, 'q.npy'), [8, 8192, 32], uniformF32(8 * 8192 * 32, 5));
    writeTensor(join(dir, 'k.npy'), [8, 8192, 32], uniformF32(8 * 8192 * 32, 6));
    writeTensor(join(dir, 'lse.npy'), [8, 8192], new Float32Array(8 * 8192));
    const blobs = `fs:${blobDir}`;
    await withCluster(redis.url, 1, ['--blobs', blobs], async () => {
      const abort = new AbortController();
      const job: InspectRequest = {
        q: join(dir, 'q.npy'),
        k: join(dir, 'k.npy'),
        lse: join(dir, 'lse.npy'),
        options: { causal: false },
        received: join(dir, 'r.npy'),
        map: join(dir, 'm.png'),
        mapSize: 8,
      };
      const running = runInspectQueue(job, { redis: redis.url, blobs, chunksPerJob: 1, signal: abort.signal });
      running.catch(() => {});
      const engine = await QueueEngine.connect(redis.url, { blobs: [blobs] });
      const id = await until('the first chunk stored', async () => {
        const [key] = (await client.keys('{longattn}:job:*')).filter((k) => !/:(reduced|records|chunks)$/.test(k));
        if (!key) return undefined;
        const status = await engine.status(key.slice('{longattn}:job:'.length));
        return status.progress.doneTiles >= 1 ? status.jobId : undefined;
      });
      abort.abort();
      await t.throwsAsync(running, { message: /^job la-\S+ cancelled$/ });
      t.is((await engine.status(id)).state, 'cancelled');
      await engine.close();
      t.false(existsSync(job.received!) || existsSync(job.map!), 'no output file');
      t.deepEqual(readdirSync(blobDir), [], 'no blob left');
      const left = (await client.keys('bull:{longattn}:*')).filter((k) => k.includes(id));
      t.deepEqual(left, [], 'no queue job of it left');
      t.deepEqual(
        (await client.keys('{longattn}:job:*')).filter((k) => k !== `{longattn}:job:${id}`),
        [],
        'only its record (state cancelled, expiring) is kept',
      );
      t.is(await client.llen('bull:{longattn}:tiles:wait'), 0);
    });
  } finally {
    client.disconnect();
    await redis.close();
  }
});
