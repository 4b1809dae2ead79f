/**
 * Queue engine vs local engine on this machine, plus the queue's own costs.
 *
 *   node --import tsx packages/cli/src/bench/queue.ts throughput --n 32768 --heads 8 --d 64 --backend ort --workers 2
 *   node --import tsx packages/cli/src/bench/queue.ts overhead  [--tiles 4096] [--workers 1]
 *   node --import tsx packages/cli/src/bench/queue.ts memory    [--tiles 4096]
 *
 * Everything runs against its own redis-server; workers and the reducer are real processes.
 * CPU seconds are summed over the submitter, workers, reducer and redis-server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runLocal, type JobRequest } from '@longattn/engine';
import { connectRedis, QueueEngine, runQueue } from '@longattn/engine/queue';
import { writeTensor } from '@longattn/tensor';
import { startRedis, type RedisTestServer } from '../../../../scripts/redis-test-server.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    n: { type: 'string', default: '32768' },
    heads: { type: 'string', default: '8' },
    d: { type: 'string', default: '64' },
    dense: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'ort' },
    workers: { type: 'string', default: '2' },
    threads: { type: 'string', default: '1' },
    'block-q': { type: 'string' },
    'block-k': { type: 'string' },
    'tiles-per-job': { type: 'string' },
    'job-flops': { type: 'string' },
    blobs: { type: 'string', default: 'redis' },
    tiles: { type: 'string', default: '4096' },
    'no-local': { type: 'boolean', default: false },
    'local-only': { type: 'boolean', default: false },
  },
});
const root = new URL('../../../../', import.meta.url).pathname;
const int = (s: string | undefined) => (s === undefined ? undefined : Number(s));

/** utime + stime of a process in seconds (Linux /proc). */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function redisCpu(redis: RedisTestServer): Promise<number> {
  const client = connectRedis(redis.url);
  const info = await client.info('cpu');
  client.disconnect();
  const get = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)![1]);
  return get('used_cpu_user') + get('used_cpu_sys');
}

async function service(kind: 'worker' | 'reducer', redis: string, args: string[]): Promise<ChildProcess> {
  const prof = process.env.BENCH_PROF ? [`--cpu-prof`, `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
  const child = spawn(
    process.execPath,
    [...prof, '--import', 'tsx', join(root, `services/${kind}/src/index.ts`), '--redis', redis, ...args],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (c: Buffer) => {
    log += c.toString();
    if (process.env.BENCH_VERBOSE) process.stderr.write(c);
  });
  while (!/queues? bull:/.test(log)) {
    if (child.exitCode !== null) throw new Error(log);
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

function selfCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function inputs(n: number, H: number, D: number): { dir: string; request: (out: string) => JobRequest } {
  const dir = mkdtempSync(join(tmpdir(), 'longattn-bench-queue-'));
  for (const [name, seed] of [
    ['q', 1],
    ['k', 2],
    ['v', 3],
  ] as const) {
    const data = new Float32Array(H * n * D);
    let s = seed;
    for (let i = 0; i < data.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      data[i] = (s / 4294967296 - 0.5) * 2;
    }
    writeTensor(join(dir, `${name}.npy`), [H, n, D], data);
  }
  return {
    dir,
    request: (out) => ({
      q: join(dir, 'q.npy'),
      k: join(dir, 'k.npy'),
      v: join(dir, 'v.npy'),
      out: join(dir, `${out}.npy`),
      lse: join(dir, `${out}-lse.npy`),
      options: { causal: !values.dense },
      backend: values.backend!,
      ...(values['block-q'] ? { blockQ: Number(values['block-q']) } : {}),
      ...(values['block-k'] ? { blockK: Number(values['block-k']) } : {}),
    }),
  };
}

async function withCluster<T>(
  workers: number,
  workerArgs: string[],
  body: (redis: RedisTestServer, cpu: () => Promise<number>) => Promise<T>,
): Promise<T> {
  const redis = await startRedis();
  const children: ChildProcess[] = [];
  try {
    children.push(await service('reducer', redis.url, []));
    for (let i = 0; i < workers; i++) children.push(await service('worker', redis.url, workerArgs));
    const threads = (pid: number) =>
      readdirSync(`/proc/${pid}/task`)
        .map((tid) => {
          const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
          const fields = stat.split(') ')[1]!.split(' ');
          return `${stat.slice(stat.indexOf('(') + 1, stat.indexOf(')'))}:${((Number(fields[11]) + Number(fields[12])) / 100).toFixed(1)}`;
        })
        .filter((t) => !t.endsWith(':0.0'));
    if (process.env.BENCH_VERBOSE) process.on('beforeExit', () => {});
    const cpu = async () => {
      if (process.env.BENCH_VERBOSE) for (const c of children) console.error(c.pid, threads(c.pid!).join(' '));
      const parts = {
        reducer: cpuOf(children[0]!.pid!),
        workers: children.slice(1).reduce((s, c) => s + cpuOf(c.pid!), 0),
        redis: await redisCpu(redis),
        submitter: selfCpu(),
      };
      if (process.env.BENCH_VERBOSE) console.error(JSON.stringify(parts));
      return parts.reducer + parts.workers + parts.redis + parts.submitter;
    };
    return await body(redis, cpu);
  } finally {
    await Promise.all(
      children.map(
        (c) =>
          new Promise((done) => {
            c.once('exit', done);
            c.kill(process.env.BENCH_PROF ? 'SIGTERM' : 'SIGKILL');
          }),
      ),
    );
    await redis.close();
  }
}

const command = positionals[0] ?? 'throughput';
if (command === 'throughput') {
  const [n, H, D] = [Number(values.n), Number(values.heads), Number(values.d)];
  const data = inputs(n, H, D);
  try {
    let local: Awaited<ReturnType<typeof runLocal>> | undefined;
    if (!values['no-local']) {
      const c0 = selfCpu();
      local = await runLocal(data.request('local'), { threads: Number(values.workers) * Number(values.threads) });
      console.log(
        JSON.stringify({
          engine: 'local',
          n,
          H,
          D,
          backend: local.backend,
          blocks: `${local.blockQ}x${local.blockK}`,
          threads: local.threads,
          tiles: local.tiles,
          wallS: +(local.wallMs / 1000).toFixed(2),
          computeS: +(local.computeMs / 1000).toFixed(2),
          gflops: +local.gflops.toFixed(1),
          cpuS: +(selfCpu() - c0).toFixed(1),
          load1: +loadavg()[0]!.toFixed(2),
        }),
      );
    }
    if (!values['local-only'])
      await withCluster(Number(values.workers), ['--backend', values.backend!, '--concurrency', values.threads!], async (redis, cpu) => {
        // Warm the long-lived workers (kernel sessions) with a small job of the same head dim.
        const warm = inputs(2048, 2, D);
        await runQueue(warm.request('warm'), { redis: redis.url, tilesPerJob: 1 });
        rmSync(warm.dir, { recursive: true, force: true });
        const c0 = await cpu();
        const opts = {
          redis: redis.url,
          blobs: values.blobs === 'fs' ? `fs:${join(data.dir, 'blobs')}` : values.blobs!,
          ...(values['tiles-per-job'] ? { tilesPerJob: Number(values['tiles-per-job']) } : {}),
          ...(values['job-flops'] ? { jobFlops: Number(values['job-flops']) } : {}),
        };
        const r = await runQueue(data.request('queue'), opts);
        const same = !values['no-local'] && readFileSync(data.request('queue').out).equals(readFileSync(data.request('local').out));
        console.log(
          JSON.stringify({
            engine: 'queue',
            n,
            H,
            D,
            backend: r.backend,
            blocks: `${r.blockQ}x${r.blockK}`,
            workers: r.threads,
            blobs: values.blobs,
            tiles: r.tiles,
            wallS: +(r.wallMs / 1000).toFixed(2),
            computeS: +(r.computeMs / 1000).toFixed(2),
            gflops: +r.gflops.toFixed(1),
            cpuS: +((await cpu()) - c0).toFixed(1),
            load1: +loadavg()[0]!.toFixed(2),
            ...(values['no-local'] ? {} : { identical: same }),
          }),
        );
        // Throughput ratios queue/local: compute phase (queue: flow added → done) and whole job (queue: + upload, download, cleanup).
        if (local)
          console.log(
            JSON.stringify({
              ratio: true,
              blobs: values.blobs,
              compute: +(local.computeMs / r.computeMs).toFixed(3),
              wall: +(local.wallMs / r.wallMs).toFixed(3),
            }),
          );
      });
  } finally {
    rmSync(data.dir, { recursive: true, force: true });
  }
} else if (command === 'overhead') {
  // Tiny tiles (64×64, D=8, dense) and one tile per job: the time is the queue's, not the kernel's.
  const tiles = Number(values.tiles);
  const side = Math.round(Math.sqrt(tiles)) * 64;
  const data = inputs(side, 1, 8);
  try {
    const request = { ...data.request('queue'), options: { causal: false }, backend: 'js', blockQ: 64, blockK: 64 };
    const local = await runLocal({ ...request, out: join(data.dir, 'local.npy') }, { threads: 1 });
    await withCluster(Number(values.workers), ['--backend', 'js'], async (redis, cpu) => {
      await runQueue({ ...request, out: join(data.dir, 'warm.npy') }, { redis: redis.url, tilesPerJob: 1 }); // warm the processes
      const c0 = await cpu();
      const r = await runQueue(request, { redis: redis.url, tilesPerJob: int(values['tiles-per-job']) ?? 1 });
      const cpuS = (await cpu()) - c0;
      console.log(
        JSON.stringify({
          tiles: r.tiles,
          workers: Number(values.workers),
          localComputeMs: +local.computeMs.toFixed(0),
          queueComputeMs: +r.computeMs.toFixed(0),
          wallMsPerTile: +(r.computeMs / r.tiles).toFixed(3),
          overheadMsPerTile: +((r.computeMs - local.computeMs / Number(values.workers)) / r.tiles).toFixed(3),
          cpuMsPerTile: +((cpuS * 1000) / r.tiles).toFixed(3),
        }),
      );
    });
  } finally {
    rmSync(data.dir, { recursive: true, force: true });
  }
} else if (command === 'memory') {
  // Redis bytes per queued tile job (blobs on fs, no workers: the flow as it waits).
  const tiles = Number(values.tiles);
  const side = Math.round(Math.sqrt(tiles)) * 64;
  const data = inputs(side, 1, 8);
  const redis = await startRedis();
  const client = connectRedis(redis.url);
  const engine = await QueueEngine.connect(redis.url);
  try {
    const used = async () => Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
    const before = await used();
    const { manifest } = await engine.submit(
      { ...data.request('queue'), options: { causal: false }, backend: 'js', blockQ: 64, blockK: 64 },
      { tilesPerJob: 1, blobs: `fs:${join(data.dir, 'blobs')}` },
    );
    const after = await used();
    console.log(
      JSON.stringify({
        tileJobs: manifest.tileJobs,
        reduceJobs: manifest.reduceJobs,
        bytes: after - before,
        bytesPerTileJob: Math.round((after - before) / (manifest.tileJobs + manifest.reduceJobs + 1)),
      }),
    );
  } finally {
    await engine.close();
    client.disconnect();
    await redis.close();
    rmSync(data.dir, { recursive: true, force: true });
  }
}
process.exit(0);
