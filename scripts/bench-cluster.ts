/**
 * The queue's control plane at scale, on one machine (docs/scaling.md, "The control plane's ceiling"):
 *
 *   node --import tsx scripts/bench-cluster.ts control [--workers 8,32,64] [--job-gflop auto,1,4,16] [--gflops 25] [--seconds 8] [--warmup 4]
 *   node --import tsx scripts/bench-cluster.ts flow    [--n 1048576] [--heads 1,4] [--job-gflop auto,1,4,16]
 *   node --import tsx scripts/bench-cluster.ts data    [--blobs fs,redis,s3] [--workers 2,8] [--n 16384] [--heads 8] [--kv-heads 2]
 *                                                      [--backend ort] [--local] [--runs 1] [--job-gflop auto]
 *
 * control: its own redis-server on a free port, one reducer and N `longattn worker` processes on the
 *   test-only wait kernel (`--backend wait:G`, LONGATTN_TEST_KERNELS=wait: each tile takes FLOPs / G
 *   GFLOP/s on a timer, no CPU), blobs on fs. Per job size it submits one causal job sized to take
 *   --seconds at the ideal rate (N·G GFLOP/s) and prints one JSON line: tile jobs/s, efficiency (ideal
 *   compute time / measured), CPU per tile job of Redis, the reducer, the submitter and the workers,
 *   Redis's peak memory, reducer lag (last tile job done → job done), the reduce backlog, load, and
 *   Redis's calls per tile job by command (where its CPU goes). Before the measured jobs, an unmeasured
 *   warm-up job of --warmup seconds (0: none, fresh workers) and 3 s with nothing queued, whose CPU per
 *   second is printed as `idle` (per worker, Redis, the reducer).
 * flow: the submitter's cost of a long job's flow with no upload (plan, batchPlan, FlowProducer.add)
 *   into an empty Redis: seconds, tile jobs, Redis bytes per job.
 *
 * Shapes (control): D = 2 and 8192×16384 tiles (1.07 GFLOP each, unmasked), so a 1 GFLOP job is one
 * tile, and the workers' own byte traffic (K/V reads: 2/blockQ bytes per FLOP, partials: 1/blockK)
 * stays small next to the queue's work: the 64 workers share this machine's cores.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { plan, validateSpec } from '@longattn/attention';
import { runLocal } from '@longattn/engine';
import { batchPlan, buildFlow, connectRedis, defaultJobFlops, QUEUE_PREFIX, QueueEngine, runQueue } from '@longattn/engine/queue';
import { writeTensor } from '@longattn/tensor';
import { FlowProducer } from 'bullmq';
import { startRedis, type RedisTestServer } from './redis-test-server.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    workers: { type: 'string', default: '8,32,64' },
    'job-gflop': { type: 'string', default: 'auto,1,4,16' },
    gflops: { type: 'string', default: '25' },
    seconds: { type: 'string', default: '8' },
    heads: { type: 'string' },
    n: { type: 'string', default: '1048576' },
    d: { type: 'string', default: '2' },
    'block-q': { type: 'string', default: '8192' },
    'block-k': { type: 'string', default: '16384' },
    concurrency: { type: 'string', default: '1' },
    blobs: { type: 'string' },
    backend: { type: 'string', default: 'ort' },
    'kv-heads': { type: 'string' },
    local: { type: 'boolean', default: false },
    runs: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '4' },
  },
});
/** BENCH_BIN=FILE: workers and the reducer start from another build of the CLI (interleaved before/after runs of one checkout). */
const BIN = process.env.BENCH_BIN ?? new URL('../packages/cli/bin/longattn.mjs', import.meta.url).pathname;
const list = (s: string) => s.split(',').map(Number);
/** Job sizes in GFLOP; `auto` = the queue's default for the job (defaultJobFlops: grows with the document). */
const jobSizes = (s: string) => s.split(',').map((x) => (x === 'auto' ? undefined : Number(x)));
const D = Number(values.d);
const [BLOCK_Q, BLOCK_K] = [Number(values['block-q']), Number(values['block-k'])];
// 8192×16384 tiles are past the default tile-area limit (docs/limits.md): raise it for every process here.
process.env.LONGATTN_MAX_TILE_AREA = String(Math.max(BLOCK_Q * BLOCK_K, Number(process.env.LONGATTN_MAX_TILE_AREA ?? 0)));

/** utime + stime of a process in seconds (Linux /proc). */
function cpuOf(pid: number): number {
  const { user, sys } = cpuSplitOf(pid);
  return user + sys;
}

/** utime and stime of a process in seconds (Linux /proc). */
function cpuSplitOf(pid: number): { user: number; sys: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) / 100, sys: Number(fields[12]) / 100 };
}

const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Each started child's last log lines (printed when a job fails). */
const logTails = new Map<ChildProcess, () => string>();

/** Starts `longattn KIND …` with the wait kernel enabled; resolves once it consumes its queue. */
async function start(kind: 'worker' | 'reducer', args: string[], logs?: string[], retries = 3): Promise<ChildProcess> {
  // BENCH_PROF=DIR: each process writes a V8 CPU profile there when it stops (children get SIGTERM first).
  const prof = process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, BIN, kind, ...args], {
    env: {
      ...process.env,
      LONGATTN_TEST_KERNELS: 'wait',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => {
    log += d;
    if (process.env.BENCH_VERBOSE) process.stderr.write(d);
  });
  for (let i = 0; !/queues? bull:/.test(log); i++) {
    // A starved machine can miss the 3 s connect limit: try again (a few times) rather than lose the run.
    if (child.exitCode !== null && /cannot reach Redis/.test(log) && retries > 0) return start(kind, args, logs, retries - 1);
    if (i > 6000 || child.exitCode !== null) throw new Error(`${kind} did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (logs) child.once('exit', () => logs.push(log));
  logTails.set(child, () => log.split('\n').slice(-15).join('\n'));
  return child;
}

/** Stops a child: SIGTERM (it finishes and, under BENCH_PROF, writes its profile), SIGKILL after 10 s. */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill('SIGTERM');
  });
}

/** Sum of Redis INFO fields. */
async function info(client: ReturnType<typeof connectRedis>, section: string): Promise<string> {
  return client.info(section);
}
const field = (text: string, key: string) => Number(new RegExp(`^${key}:([0-9.]+)`, 'm').exec(text)?.[1] ?? NaN);

/** Calls per command since the last CONFIG RESETSTAT (INFO commandstats). */
function commandCalls(text: string): Map<string, { calls: number; usec: number }> {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

/** Seconds over which the control bench measures its idle processes' CPU (after the warm-up). */
const IDLE_S = 3;

/** The causal n (a multiple of BLOCK_K) whose FLOPs ≈ 2·n²·D·H take `seconds` at the ideal rate (workers × G GFLOP/s). */
function sizeFor(seconds: number, workers: number, gflops: number, heads: number): number {
  const target = seconds * workers * gflops * 1e9;
  return Math.max(BLOCK_K * 2, Math.round(Math.sqrt(target / (2 * D * heads)) / BLOCK_K) * BLOCK_K);
}

/** Redis's used_cpu_user + used_cpu_sys in seconds. */
async function redisCpuOf(client: ReturnType<typeof connectRedis>): Promise<number> {
  const text = await info(client, 'cpu');
  return field(text, 'used_cpu_user') + field(text, 'used_cpu_sys');
}

/** One causal job of `heads` heads × n tokens (D, zeros: the wait kernel never reads values). */
function inputs(dir: string, n: number, heads: number): { q: string; k: string; v: string } {
  const paths = { q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), v: join(dir, 'v.npy') };
  const data = new Float32Array(heads * n * D);
  for (const p of Object.values(paths)) writeTensor(p, [heads, n, D], data);
  return paths;
}

async function control(): Promise<void> {
  const gflops = Number(values.gflops);
  const heads = Number(values.heads ?? 4);
  for (const workers of list(values.workers!)) {
    const redis = await startRedis();
    const dir = mkdtempSync(join(tmpdir(), 'longattn-bench-cluster-'));
    const children: ChildProcess[] = [];
    const client = connectRedis(redis.url);
    try {
      const blobs = `fs:${join(dir, 'blobs')}`;
      const common = ['--redis', redis.url, '--blobs', blobs];
      children.push(await start('reducer', common));
      const args = [...common, '--backend', `wait:${gflops}`, '--concurrency', values.concurrency!];
      for (let i = 0; i < workers; i += 8)
        children.push(...(await Promise.all(Array.from({ length: Math.min(8, workers - i) }, () => start('worker', args)))));
      const reducer = children[0]!.pid!;
      const workerPids = children.slice(1).map((c) => c.pid!);
      const engine = await QueueEngine.connect(redis.url, { blobs: [blobs] });
      try {
        // --warmup S (default 4): one unmeasured job of S seconds at the ideal rate first, at the first
        // job size, so the measured jobs find long-lived workers' state (V8 has optimised the per-job
        // code, connections and scripts are loaded): a fresh worker's first ~20 tile jobs cost it ~3 ms
        // of CPU more each (docs/scaling.md). 0: measure fresh workers.
        const warmupS = Number(values.warmup);
        if (warmupS > 0) {
          const n = sizeFor(warmupS, workers, gflops, heads);
          const jobGflop = jobSizes(values['job-gflop']!)[0];
          const request = {
            ...inputs(dir, n, heads),
            out: join(dir, 'o.npy'),
            options: { causal: true },
            backend: `wait:${gflops}`,
            blockQ: BLOCK_Q,
            blockK: BLOCK_K,
          };
          const { manifest } = await engine.submit(request, { blobs, ...(jobGflop === undefined ? {} : { jobFlops: jobGflop * 1e9 }) });
          await engine.wait(manifest.id);
          await engine.remove(manifest.id);
        }
        // Idle cost: every process's CPU over IDLE_S with nothing queued (lock renewals, stalled checks, blocking fetches).
        const idle0 = { workers: workerPids.reduce((s, p) => s + cpuOf(p), 0), redis: await redisCpuOf(client), reducer: cpuOf(reducer) };
        await new Promise((r) => setTimeout(r, IDLE_S * 1000));
        const idle = {
          workerMsPerS: +(((workerPids.reduce((s, p) => s + cpuOf(p), 0) - idle0.workers) * 1000) / IDLE_S / workers).toFixed(2),
          redisMsPerS: +((((await redisCpuOf(client)) - idle0.redis) * 1000) / IDLE_S).toFixed(2),
          reducerMsPerS: +(((cpuOf(reducer) - idle0.reducer) * 1000) / IDLE_S).toFixed(2),
        };
        for (const jobGflop of jobSizes(values['job-gflop']!)) {
          const n = sizeFor(Number(values.seconds), workers, gflops, heads);
          const paths = inputs(dir, n, heads);
          const request = {
            ...paths,
            out: join(dir, 'o.npy'),
            options: { causal: true },
            backend: `wait:${gflops}`,
            blockQ: BLOCK_Q,
            blockK: BLOCK_K,
          };
          const submit0 = performance.now();
          await client.config('RESETSTAT');
          const sizing = jobGflop === undefined ? {} : { jobFlops: jobGflop * 1e9 };
          const { manifest, output } = await engine.submit(request, { blobs, ...sizing, createOutput: true });
          const submitS = (performance.now() - submit0) / 1000;
          const cpu0 = {
            redis: field(await info(client, 'cpu'), 'used_cpu_user') + field(await info(client, 'cpu'), 'used_cpu_sys'),
            reducer: cpuOf(reducer),
            workers: workerPids.reduce((s, p) => s + cpuOf(p), 0),
            workersSys: workerPids.reduce((s, p) => s + cpuSplitOf(p).sys, 0),
            self: selfCpu(),
          };
          const t0 = performance.now();
          // Sample: the reduce backlog and when the last tile job left the queue (every 100 ms), Redis
          // memory (every 1 s: INFO is the expensive part, and this process's CPU counts as the submitter's).
          let peak = field(await info(client, 'memory'), 'used_memory'); // the whole flow is queued now
          let backlog = 0;
          let tilesDoneAt: number | undefined;
          let sampling = true;
          const sampler = (async () => {
            const sampleClient = connectRedis(redis.url);
            for (let i = 1; sampling; i++) {
              // One round trip (a pipeline) per sample: this process's CPU counts as the submitter's.
              const replies = await sampleClient
                .pipeline()
                .llen(`${QUEUE_PREFIX}:tiles:wait`)
                .llen(`${QUEUE_PREFIX}:tiles:active`)
                .zcard(`${QUEUE_PREFIX}:tiles:prioritized`)
                .llen(`${QUEUE_PREFIX}:reduce:wait`)
                .exec();
              const [tw, ta, tp, rw] = (replies ?? []).map(([, n]) => Number(n));
              if (i % 10 === 0) peak = Math.max(peak, field(await info(sampleClient, 'memory'), 'used_memory'));
              backlog = Math.max(backlog, rw);
              if (tw + ta + tp === 0) tilesDoneAt ??= performance.now();
              await new Promise((r) => setTimeout(r, 100));
            }
            sampleClient.disconnect();
          })();
          const status = await engine.wait(manifest.id).catch((error: Error) => error);
          const doneAt = performance.now();
          sampling = false;
          await sampler;
          if (status instanceof Error) {
            // Say so and go on with the next size: a starved machine can fail a job (lost locks).
            process.stderr.write(`reducer's log:\n${logTails.get(children[0]!)?.()}\n`);
            const load = loadavg().map((x) => +x.toFixed(2));
            console.log(JSON.stringify({ workers, gflops, jobGflop: jobGflop ?? 'auto', failed: status.message, load }));
            await engine.remove(manifest.id).catch(() => {});
            continue;
          }
          const cpuInfo = await info(client, 'cpu');
          const stats = commandCalls(await info(client, 'commandstats'));
          const cpu = {
            redis: field(cpuInfo, 'used_cpu_user') + field(cpuInfo, 'used_cpu_sys') - cpu0.redis,
            reducer: cpuOf(reducer) - cpu0.reducer,
            workers: workerPids.reduce((s, p) => s + cpuOf(p), 0) - cpu0.workers,
            workersSys: workerPids.reduce((s, p) => s + cpuSplitOf(p).sys, 0) - cpu0.workersSys,
            submitter: selfCpu() - cpu0.self,
          };
          await engine.download(manifest.id, output!);
          await engine.remove(manifest.id);
          const computeS = (doneAt - t0) / 1000;
          const idealS = manifest.flops / (workers * gflops * 1e9);
          const jobs = manifest.tileJobs;
          const perJob = (s: number) => +((s * 1000) / jobs).toFixed(3);
          const top = [...stats]
            .sort((a, b) => b[1].usec - a[1].usec)
            .slice(0, 12)
            .map(([name, s]) => `${name}:${(s.calls / jobs).toFixed(1)}/${(s.usec / 1000 / jobs).toFixed(2)}ms`);
          console.log(
            JSON.stringify({
              workers,
              gflops,
              jobGflop: jobGflop ?? `auto: ${+(manifest.flops / jobs / 1e9).toFixed(1)}`,
              n,
              heads,
              tileJobs: jobs,
              reduceJobs: manifest.reduceJobs,
              workersUsed: status.workers,
              submitS: +submitS.toFixed(2),
              computeS: +computeS.toFixed(2),
              idealS: +idealS.toFixed(2),
              jobsPerS: +(jobs / computeS).toFixed(1),
              idealJobsPerS: +(jobs / idealS).toFixed(1),
              efficiency: +(idealS / computeS).toFixed(3),
              cpuMsPerJob: {
                redis: perJob(cpu.redis),
                reducer: perJob(cpu.reducer),
                submitter: perJob(cpu.submitter),
                workers: perJob(cpu.workers),
                workersSys: perJob(cpu.workersSys),
              },
              warmupS,
              idle,
              controlPlaneMsPerJob: perJob(cpu.redis + cpu.reducer + cpu.submitter),
              redisPeakMB: +(peak / 2 ** 20).toFixed(1),
              reducerLagS: tilesDoneAt === undefined ? null : +((doneAt - tilesDoneAt) / 1000).toFixed(2),
              reduceBacklog: backlog,
              redisCallsPerJob: top,
              load: loadavg().map((x) => +x.toFixed(2)),
            }),
          );
        }
      } finally {
        await engine.close();
      }
    } finally {
      client.disconnect();
      await Promise.all(children.map((c) => stop(c)));
      await redis.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** A long job's flow, submitted with no upload: what plan + batchPlan + FlowProducer.add cost, and Redis's bytes per job. */
async function flow(): Promise<void> {
  const n = Number(values.n);
  for (const heads of list(values.heads ?? '1,4'))
    for (const jobGflop of jobSizes(values['job-gflop']!)) {
      const redis: RedisTestServer = await startRedis();
      const client = connectRedis(redis.url);
      const flows = new FlowProducer({ connection: { host: '127.0.0.1', port: redis.port }, prefix: QUEUE_PREFIX });
      try {
        const used = async () => field(await client.info('memory'), 'used_memory');
        const before = await used();
        const t0 = performance.now();
        const spec = validateSpec({ q: [heads, n, 64], k: [heads, n, 64], v: [heads, n, 64] }, { causal: true });
        const thePlan = plan(spec, { blockQ: 256, blockK: 2048 });
        const groups = batchPlan(thePlan, jobGflop === undefined ? {} : { jobFlops: jobGflop * 1e9 });
        const planned = performance.now();
        await flows.add(buildFlow('bench-flow', groups));
        const added = performance.now();
        const jobs = groups.reduce((s, g) => s + g.tileJobs.length, 0) + groups.length + 1;
        const bytes = (await used()) - before;
        console.log(
          JSON.stringify({
            n,
            heads,
            D: 64,
            tiles: '256x2048',
            jobGflop: jobGflop ?? `auto: ${+(defaultJobFlops(thePlan) / 1e9).toFixed(1)}`,
            tflop: +(thePlan.flops / 1e12).toFixed(1),
            tileJobs: jobs - groups.length - 1,
            reduceJobs: groups.length,
            planS: +((planned - t0) / 1000).toFixed(2),
            addS: +((added - planned) / 1000).toFixed(2),
            msPerJob: +((added - t0) / jobs).toFixed(3),
            redisMB: +(bytes / 2 ** 20).toFixed(1),
            bytesPerJob: Math.round(bytes / jobs),
            load: loadavg().map((x) => +x.toFixed(2)),
          }),
        );
      } finally {
        await flows.close();
        client.disconnect();
        await redis.close();
      }
    }
}

/**
 * s3rver (test/s3/support.ts) in its own process, so its CPU can be measured apart from ours
 * (/proc): it runs on the same cores as the workers here, and a real bucket would not.
 */
async function startS3Process(bucket: string): Promise<{ env: Record<string, string>; pid: number; close(): Promise<void> }> {
  const support = new URL('../test/s3/support.ts', import.meta.url).href;
  const code = `import { startS3 } from ${JSON.stringify(support)};
const s3 = await startS3([${JSON.stringify(bucket)}]);
process.stdout.write(JSON.stringify(s3.env) + '\\n');
process.on('SIGTERM', async () => { await s3.close(); process.exit(0); });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  for (let i = 0; !out.includes('\n'); i++) {
    if (i > 600 || child.exitCode !== null) throw new Error(`s3rver did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    env: JSON.parse(out) as Record<string, string>,
    pid: child.pid!,
    close: () =>
      new Promise((done) => {
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * Data movement per blob store with real kernels: a causal job (--n, --heads query heads over
 * --kv-heads, default heads/4; D = 64, the backend's tiles) on N workers; the workers' own `reads:`
 * lines (logged at SIGTERM) summed: bytes read per GFLOP, block-cache hit rate, seconds reading;
 * CPU seconds of the workers, the reducer, Redis and s3rver (its own process). With --local, the
 * local engine (threads = workers) runs the same inputs first: its compute time, the ratio, and
 * whether the queue's output bits equal its own.
 */
async function data(): Promise<void> {
  const n = Number(values.n === '1048576' ? 16384 : values.n);
  const heads = Number(values.heads ?? 8);
  const kvHeads = Number(values['kv-heads'] ?? Math.max(1, heads / 4));
  // --job-gflop G: tile jobs of G GFLOP (jobFlops); default the queue's own (defaultJobFlops).
  const jobGflop = values['job-gflop'] === 'auto,1,4,16' || values['job-gflop'] === 'auto' ? undefined : Number(values['job-gflop']);
  const dir = mkdtempSync(join(tmpdir(), 'longattn-bench-data-'));
  const q = new Float32Array(heads * n * 64).map((_, i) => Math.sin(i));
  const kv = new Float32Array(kvHeads * n * 64).map((_, i) => Math.cos(i));
  writeTensor(join(dir, 'q.npy'), [heads, n, 64], q);
  writeTensor(join(dir, 'k.npy'), [kvHeads, n, 64], kv);
  writeTensor(join(dir, 'v.npy'), [kvHeads, n, 64], kv);
  const request = (out: string) => ({
    q: join(dir, 'q.npy'),
    k: join(dir, 'k.npy'),
    v: join(dir, 'v.npy'),
    out: join(dir, `${out}.npy`),
    options: { causal: true },
    backend: values.backend!,
  });
  try {
    for (let run = 0; run < Number(values.runs); run++)
      for (const store of (values.blobs ?? 'fs,redis,s3').split(','))
        for (const workers of list(values.workers === '8,32,64' ? '2,8' : values.workers!)) {
          const localCpu0 = selfCpu();
          const local = values.local ? await runLocal(request('local'), { threads: workers }) : undefined;
          const localCpuS = selfCpu() - localCpu0;
          const redis = await startRedis();
          const s3 = store === 's3' ? await startS3Process('bench') : undefined;
          if (s3) Object.assign(process.env, s3.env);
          const blobs = store === 'fs' ? `fs:${join(dir, 'blobs')}` : store === 's3' ? 's3://bench/jobs' : 'redis';
          const children: ChildProcess[] = [];
          const logs: string[] = [];
          const client = connectRedis(redis.url);
          try {
            const common = ['--redis', redis.url, ...(store === 'redis' ? [] : ['--blobs', blobs])];
            children.push(await start('reducer', common));
            for (let i = 0; i < workers; i++) children.push(await start('worker', [...common, '--backend', values.backend!], logs));
            const redisCpu = async () => {
              const text = await info(client, 'cpu');
              return field(text, 'used_cpu_user') + field(text, 'used_cpu_sys');
            };
            const cpu = async () => ({
              workers: children.slice(1).reduce((t, c) => t + cpuOf(c.pid!), 0),
              reducer: cpuOf(children[0]!.pid!),
              redis: await redisCpu(),
              s3rver: s3 ? cpuOf(s3.pid) : 0,
              submitter: selfCpu(),
            });
            // The compute phase's CPU: sampled at the first and the last progress report (4 a second).
            const phaseCpu = () => ({
              at: performance.now(),
              workers: children.slice(1).reduce((t, c) => t + cpuOf(c.pid!), 0),
              s3rver: s3 ? cpuOf(s3.pid) : 0,
            });
            const phase: { first?: ReturnType<typeof phaseCpu>; last?: ReturnType<typeof phaseCpu> } = {};
            const c0 = await cpu();
            const r = await runQueue(request('queue'), {
              redis: redis.url,
              blobs,
              ...(jobGflop !== undefined ? { jobFlops: jobGflop * 1e9 } : {}),
              onProgress: () => {
                const now = phaseCpu();
                phase.first ??= now;
                phase.last = now;
              },
            });
            const c1 = await cpu();
            const same = local ? readFileSync(request('queue').out).equals(readFileSync(request('local').out)) : undefined;
            await Promise.all(
              children.slice(1).map(
                (c) =>
                  new Promise((done) => {
                    c.once('exit', done);
                    c.kill('SIGTERM');
                  }),
              ),
            );
            const sum = { mib: 0, hits: 0, misses: 0, readS: 0, gflop: 0, stallS: 0, kernelS: 0 };
            // Each worker's last `reads:` line (the one at shutdown): the lines are running totals.
            for (const log of logs) {
              const m = [
                ...log.matchAll(
                  /reads: ([0-9.]+) MiB .*cache (\d+) hits \/ (\d+) misses.*, ([0-9.]+) s reading, ([0-9.]+) GFLOP(?:, ([0-9.]+) s stalled, ([0-9.]+) s computing)?/g,
                ),
              ].at(-1);
              if (!m) continue;
              sum.stallS += Number(m[6] ?? NaN);
              sum.kernelS += Number(m[7] ?? NaN);
              sum.mib += Number(m[1]);
              sum.hits += Number(m[2]);
              sum.misses += Number(m[3]);
              sum.readS += Number(m[4]);
              sum.gflop += Number(m[5]);
            }
            const cpuS = Object.fromEntries(Object.entries(c1).map(([k, v]) => [k, +(v - c0[k as keyof typeof c0]).toFixed(2)]));
            const computeS = r.computeMs / 1000;
            const during = {
              s: +((phase.last!.at - phase.first!.at) / 1000).toFixed(2),
              workers: +(phase.last!.workers - phase.first!.workers).toFixed(2),
              s3rver: +(phase.last!.s3rver - phase.first!.s3rver).toFixed(2),
            };
            // s3rver's CPU came out of the same cores as the kernels': the compute phase as if it had
            // run elsewhere takes away the core-seconds it used during it (a real bucket's servers are not ours).
            const cores = 2;
            const withoutS3rverS = computeS - during.s3rver / cores;
            console.log(
              JSON.stringify({
                store,
                workers,
                n,
                heads,
                kvHeads,
                backend: r.backend,
                blocks: `${r.blockQ}x${r.blockK}`,
                computeS: +computeS.toFixed(2),
                wallS: +(r.wallMs / 1000).toFixed(2),
                ...(local
                  ? {
                      localComputeS: +(local.computeMs / 1000).toFixed(2),
                      localCpuS: +localCpuS.toFixed(2),
                      ratio: +(local.computeMs / r.computeMs).toFixed(3),
                      ratioWithoutS3rver: +(local.computeMs / 1000 / withoutS3rverS).toFixed(3),
                      sameBits: same,
                    }
                  : {}),
                gflop: +(r.flops / 1e9).toFixed(1),
                inputMiB: +(((heads + 2 * kvHeads) * n * 64 * 4) / 2 ** 20).toFixed(1),
                readMiB: +sum.mib.toFixed(1),
                mibPerGflop: +(sum.mib / (r.flops / 1e9)).toFixed(3),
                hitRate: sum.hits + sum.misses > 0 ? +(sum.hits / (sum.hits + sum.misses)).toFixed(3) : null,
                lookups: { hits: sum.hits, misses: sum.misses },
                readS: +sum.readS.toFixed(2),
                readShare: +(sum.readS / (workers * computeS)).toFixed(3),
                // The reads' exposed part: kernel threads waiting for blocks once the earlier task was done.
                stallS: +sum.stallS.toFixed(2),
                // Kernel threads computing (kernels, merges), against their wall time (workers × compute phase).
                threadComputeS: +sum.kernelS.toFixed(2),
                threadBusy: +(sum.kernelS / (workers * computeS)).toFixed(3),
                jobGflop: jobGflop ?? 'auto',
                cpuS,
                computeCpuS: during,
                load: loadavg().map((x) => +x.toFixed(2)),
              }),
            );
          } finally {
            client.disconnect();
            await Promise.all(
              children.map(
                (c) =>
                  new Promise((done) => {
                    if (c.exitCode !== null) return done(null);
                    c.once('exit', done);
                    c.kill('SIGKILL');
                  }),
              ),
            );
            await redis.close();
            await s3?.close();
          }
        }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const command = positionals[0] ?? 'control';
if (command === 'control') await control();
else if (command === 'flow') await flow();
else if (command === 'data') await data();
else throw new Error(`unknown command ${command}: control | flow | data`);
process.exit(0);
