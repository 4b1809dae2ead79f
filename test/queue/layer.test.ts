import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runLayer, type LayerRequest } from '@longattn/engine';
import { connectRedis, jobKeys, QueueEngine, runLayerQueue } from '@longattn/engine/queue';
import { readTensor, writeSafetensors } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { longattn, tempDir } from '../support/cli.ts';
import { maxAbs, maxDiff, prepare, type LayerCase } from '../support/layer-cases.ts';
import { layerReference } from '../support/layer64.ts';
import { onlyJobId, startService, until, type Service } from './support.ts';

/**
 * `longattn layer --engine queue` (docs/flow.md, "Layers on the queue"), with a real
 * redis-server, worker and reducer processes: Y, O and LSE bitwise the local engine's `layer`
 * for 1 and 2 workers, fs and Redis blobs, on odd shapes (d_model 45 and 37, GQA 6 on 2, two K/V
 * row blocks, cross-attention, with and without biases and o_proj); exact against the float64
 * layer of test/support/layer64.ts; progress over every stage; a cancel leaves no blobs; bad
 * weights exit 2 naming the tensor before anything is queued.
 */

const CASES: LayerCase[] = [
  {
    name: 'self S=700 H=6 Hk=2 D=16 d=45 biases o_proj causal window+sinks',
    spec: { B: 1, S: 700, Skv: 700, dModel: 45, dKv: 45, H: 6, Hk: 2, D: 16, causal: true, window: [63, 0], sinks: 2, theta: 10000 },
    biases: true,
    oProj: true,
    rank2: true,
    options: { causal: true, window: { left: 63, right: 0 }, pattern: { sinks: 2 } },
    blocks: { blockQ: 96, blockK: 128 },
  },
  {
    name: 'cross B=2 S=50 Skv=530 H=6 Hk=2 D=12 d=37 no biases no o_proj causal',
    spec: { B: 2, S: 50, Skv: 530, dModel: 37, dKv: 37, H: 6, Hk: 2, D: 12, causal: true },
    biases: false,
    oProj: false,
    cross: true,
    options: { causal: true },
    blocks: { blockQ: 16, blockK: 64 },
  },
];

/** The backend and GEMM both engines run (the bits are compared for the same ones). */
const SAME = { backend: 'js', projection: 'js' } as const;

/** Y, O, LSE file bytes of a run. */
function bytes(request: LayerRequest): Buffer[] {
  return [request.out, request.attnOut!, request.lse!].map((p) => readFileSync(p));
}

/** A reducer and `workers` workers (given `blobs` besides the queue's Redis) around `body`; `grow` adds a worker. */
async function withCluster<T>(url: string, workers: number, args: string[], body: (grow: () => Promise<void>) => Promise<T>): Promise<T> {
  const services: Service[] = [];
  try {
    services.push(await startService('reducer', url, args));
    const grow = async () => void services.push(await startService('worker', url, args));
    for (let i = 0; i < workers; i++) await grow();
    return await body(grow);
  } finally {
    await Promise.all(services.map((s) => s.stop()));
  }
}

test('layer --engine queue: Y, O, LSE bitwise the local engine’s for 1 and 2 workers, fs and Redis blobs; exact against float64', async (t) => {
  const redis = await startRedis();
  const blobDir = tempDir('longattn-layer-blobs-');
  try {
    const prepared = CASES.map((c) => ({ c, dir: tempDir('longattn-qlayer-') })).map(({ c, dir }) => ({ c, dir, ...prepare(c, dir) }));
    const outs = (request: (out: string, extra?: Partial<LayerRequest>) => LayerRequest, dir: string, name: string) =>
      request(`${name}-y.npy`, { attnOut: join(dir, `${name}-o.npy`), lse: join(dir, `${name}-lse.npy`), ...SAME });
    for (const p of prepared) await runLayer(outs(p.request, p.dir, 'local'), { threads: 2 });
    const fs = ['--blobs', `fs:${blobDir}`];
    const progress: { doneFlops: number; totalFlops: number; doneTiles: number; totalTiles: number }[] = [];
    await withCluster(redis.url, 1, fs, async (grow) => {
      for (const p of prepared)
        await runLayerQueue(outs(p.request, p.dir, 'one'), {
          redis: redis.url,
          blobs: `fs:${blobDir}`,
          blocksPerJob: 1,
          tilesPerJob: 3,
          onProgress: (x) => progress.push(x),
        });
      await grow();
      for (const p of prepared) await runLayerQueue(outs(p.request, p.dir, 'two'), { redis: redis.url, blocksPerJob: 2 });
      // The CLI (cross-attention case, the machine's default projection GEMM on both engines).
      const p = prepared[1]!;
      const r = p.request('cli-y.npy', { attnOut: join(p.dir, 'cli-o.npy'), lse: join(p.dir, 'cli-lse.npy'), backend: 'js' });
      await runLayer({
        ...r,
        out: join(p.dir, 'cli-local-y.npy'),
        attnOut: join(p.dir, 'cli-local-o.npy'),
        lse: join(p.dir, 'cli-local-lse.npy'),
      });
      const cli = await longattn([
        'layer',
        ...['--x', r.x, '--x-kv', r.xKv!, '--weights', r.weights, '--prefix', r.prefix!, '--heads', '6', '--kv-heads', '2', '--no-rope'],
        ...['--causal', '--out', r.out, '--attn-out', r.attnOut!, '--lse', r.lse!, '--backend', 'js', '--block-q', '16', '--block-k', '64'],
        ...['--engine', 'queue', '--redis', redis.url, '--blobs', `fs:${blobDir}`, '--json'],
      ]);
      t.is(cli.code, 0, cli.stderr);
      const json = JSON.parse(cli.stdout) as { engine: string; layer: { projectionFlops: number } };
      t.is(json.engine, 'queue');
      t.true(json.layer.projectionFlops > 0);
      for (const [got, want] of [
        [r.out, 'cli-local-y.npy'],
        [r.attnOut!, 'cli-local-o.npy'],
        [r.lse!, 'cli-local-lse.npy'],
      ] as const)
        t.true(readFileSync(got).equals(readFileSync(join(p.dir, want))), `CLI: ${want} bits`);
    });
    for (const p of prepared) {
      const want = bytes(outs(p.request, p.dir, 'local'));
      for (const name of ['one', 'two']) {
        const got = bytes(outs(p.request, p.dir, name));
        for (const [i, what] of ['Y', 'O', 'LSE'].entries()) t.true(got[i]!.equals(want[i]!), `${p.c.name}, ${name}: ${what} bits`);
      }
      // Exact (docs/contracts.md, "Document layers"): max|Y − Y64| ≤ 4·max|Y32 − Y64| + 1e-5·max|Y64|.
      const ref = layerReference(p.c.spec, p.x, p.xKv, p.w);
      const naive = layerReference(p.c.spec, p.x, p.xKv, p.w, Math.fround);
      const y = readTensor(join(p.dir, 'one-y.npy'));
      const { B, S, H, D, dModel } = p.c.spec;
      t.deepEqual(y.shape, [...(p.c.rank2 ? [] : [B]), S, p.c.oProj ? dModel : H * D]);
      const err = maxDiff(y.data, ref.y);
      const bound = 4 * maxDiff(naive.y, ref.y) + 1e-5 * maxAbs(ref.y);
      t.true(err <= bound && bound > 0, `${p.c.name}: max|Y − Y64| = ${err}, bound ${bound}`);
      const lse = readTensor(join(p.dir, 'one-lse.npy'));
      t.true(maxDiff(lse.data, ref.lse) <= 1e-4 * Math.max(1, maxAbs(ref.lse)), `${p.c.name}: LSE off by ${maxDiff(lse.data, ref.lse)}`);
    }
    // Progress counts every stage's work: the last report of a job is its whole (projections + attention).
    const last = progress.at(-1)!;
    t.is(last.doneFlops, last.totalFlops);
    t.is(last.doneTiles, last.totalTiles);
    t.deepEqual(readdirSync(blobDir), [], 'every blob removed');
    const r = connectRedis(redis.url);
    t.is(await onlyJobId(r), undefined, 'no job left in Redis');
    await r.quit();
  } finally {
    await redis.stop();
  }
});

test('layer --engine queue: progress while projecting; a cancel mid-job leaves no blobs; bad weights exit 2 before anything is queued', async (t) => {
  const redis = await startRedis();
  const blobDir = tempDir('longattn-layer-blobs-');
  const dir = tempDir('longattn-qlayer-');
  try {
    const c = CASES[0]!;
    const { request } = prepare(c, dir);
    await withCluster(redis.url, 1, ['--blobs', `fs:${blobDir}`, '--throttle-ms', '400'], async () => {
      const engine = await QueueEngine.connect(redis.url);
      const r = connectRedis(redis.url);
      try {
        const manifest = await engine.submitLayer(request('y.npy', SAME), { blobs: `fs:${blobDir}`, blocksPerJob: 1 });
        const id = manifest.id;
        await until('a projected block', async () => ((await r.scard(jobKeys.projected(id))) > 0 ? true : undefined));
        const status = await engine.status(id);
        t.true(status.progress.doneFlops > 0 && status.progress.doneTiles === 0, 'projection work shows before any tile');
        t.is(status.progress.totalFlops, manifest.flops + manifest.layer!.flops);
        t.is(await engine.cancel(id), 'running');
        await until('the job’s blobs gone', async () => (readdirSync(blobDir).length === 0 ? true : undefined), 20_000);
        await new Promise((resolve) => setTimeout(resolve, 1500)); // a throttled block in flight lands, and is cleaned up
        t.deepEqual(readdirSync(blobDir), [], 'no blob left after the cancel');
        t.is((await engine.status(id)).state, 'cancelled');
        await engine.remove(id);
      } finally {
        await r.quit();
        await engine.close();
      }
    });
    // A weight whose shape disagrees with --kv-heads: exit 2 naming the tensor, nothing in Redis.
    const bad = join(dir, 'bad.safetensors');
    writeSafetensors(bad, {
      'q_proj.weight': { shape: [6 * 16, 45], data: new Float32Array(6 * 16 * 45) },
      'k_proj.weight': { shape: [3 * 16, 45], data: new Float32Array(3 * 16 * 45) },
      'v_proj.weight': { shape: [2 * 16, 45], data: new Float32Array(2 * 16 * 45) },
    });
    const cli = await longattn([
      'layer',
      ...[
        '--x',
        `${join(dir, 'x.safetensors')}#hidden`,
        '--weights',
        bad,
        '--heads',
        '6',
        '--kv-heads',
        '2',
        '--out',
        join(dir, 'bad-y.npy'),
      ],
      ...['--engine', 'queue', '--redis', redis.url, '--backend', 'js'],
    ]);
    t.is(cli.code, 2, cli.stderr);
    t.regex(cli.stderr, /--weights.*"k_proj\.weight" has 48 rows/);
    const r = connectRedis(redis.url);
    t.deepEqual(await r.keys(jobKeys.hash('*')), [], 'no job record');
    t.deepEqual(await r.keys('bull:{longattn}:*:la-*'), [], 'no queue job');
    await r.quit();
  } finally {
    await redis.stop();
  }
});
