/**
 * The HTTP API's targets on this machine (services/api README):
 *
 *   node --import tsx scripts/bench-api.ts upload  [--mb 200]            # q/k/v upload to fs blobs: MB/s, api peak RSS
 *   node --import tsx scripts/bench-api.ts small   [--runs 20]           # n=1024, 8 heads, D=64, 2 warm workers: end to end
 *   node --import tsx scripts/bench-api.ts status  [--rate 100 --seconds 10 --workers 2]  # GET /v1/jobs/:id while a job runs
 *
 * Everything runs against its own redis-server; the api, workers and reducer are real processes
 * started from the CLI bin, the client is @longattn/client on Node's fetch over loopback.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openAsBlob, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LongattnClient } from '@longattn/client';
import { writeTensor } from '@longattn/tensor';
import { freePort, startRedis } from './redis-test-server.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    mb: { type: 'string', default: '200' },
    runs: { type: 'string', default: '20' },
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '10' },
    backend: { type: 'string', default: 'auto' },
    workers: { type: 'string', default: '2' },
  },
});
const BIN = new URL('../packages/cli/bin/longattn.mjs', import.meta.url).pathname;
const KEY = 'bench-key-0123456789';

/** Starts `longattn KIND …` and resolves once its ready line is on stderr. */
async function start(args: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, LONGATTN_API_KEYS: `bench=${KEY}` },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  for (let i = 0; !ready.test(log); i++) {
    if (i > 1200 || child.exitCode !== null) throw new Error(`${args[0]} did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}

/** utime + stime of a process in seconds (Linux /proc). */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Peak resident set (VmHWM) of a process, MB. */
const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
/** The 1, 5 and 15 minute load averages (the machine is shared: every line says how busy it was). */
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

function random(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 2 ** 32 - 0.5) * 2;
  }
  return a;
}

async function main(): Promise<void> {
  const mode = positionals[0] ?? 'small';
  const dir = mkdtempSync(join(tmpdir(), 'longattn-bench-api-'));
  const redis = await startRedis();
  const children: ChildProcess[] = [];
  try {
    const port = await freePort();
    const api = await start(
      [
        'api',
        '--redis',
        redis.url,
        '--port',
        String(port),
        '--host',
        '127.0.0.1',
        '--blobs',
        `fs:${join(dir, 'blobs')}`,
        '--log-level',
        'warn',
      ],
      /api on http/,
    );
    children.push(api);
    const client = new LongattnClient({ url: `http://127.0.0.1:${port}`, key: KEY });
    // Services open only the blob stores they are given (docs/limits.md): the api's fs blobs.
    const blobs = ['--blobs', `fs:${join(dir, 'blobs')}`];
    const worker = () => start(['worker', '--redis', redis.url, '--backend', values.backend!, ...blobs], /queues? bull:/);
    const reducer = () => start(['reducer', '--redis', redis.url, ...blobs], /queues? bull:/);
    if (mode === 'upload') {
      // q, k, v of [8, S, 64] float32, ~mb/3 each.
      const S = Math.round((Number(values.mb) * 1e6) / 3 / (8 * 64 * 4));
      for (const [p, seed] of [
        ['q', 1],
        ['k', 2],
        ['v', 3],
      ] as const)
        writeTensor(join(dir, `${p}.npy`), [8, S, 64], random(8 * S * 64, seed));
      const bytes = ['q', 'k', 'v'].reduce((n, p) => n + statSync(join(dir, `${p}.npy`)).size, 0);
      const rssBefore = peakRss(api.pid!);
      const [apiCpu0, selfCpu0] = [cpuOf(api.pid!), process.cpuUsage()];
      const t0 = performance.now();
      const { id } = await client.submit({ q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), v: join(dir, 'v.npy') }, { backend: 'ort' });
      const seconds = (performance.now() - t0) / 1000;
      const apiCpu = cpuOf(api.pid!) - apiCpu0;
      const self = process.cpuUsage(selfCpu0);
      // On a loaded machine wall time measures the neighbours: MB per CPU-second of the api is what it does with one core.
      console.log(
        JSON.stringify({
          mode,
          load: loadavg(),
          MB: bytes / 1e6,
          seconds,
          MBps: bytes / 1e6 / seconds,
          apiCpuSeconds: apiCpu,
          apiMBperCpuSecond: bytes / 1e6 / apiCpu,
          clientCpuSeconds: (self.user + self.system) / 1e6,
          apiPeakRssMB: peakRss(api.pid!),
          apiRssBeforeMB: rssBefore,
        }),
      );
      await client.cancel(id);
      // The same upload from curl (a C client), with the api's own phases (Server-Timing): receive
      // (the body streamed into the blobs) and submit (validation, plan, flow).
      const apiCpuCurl0 = cpuOf(api.pid!);
      const curl = spawnSync('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{time_total} %{http_code} %header{server-timing}',
        '-H',
        `Authorization: Bearer ${KEY}`,
        '-F',
        'options={"backend":"ort"}',
        ...['q', 'k', 'v'].flatMap((p) => ['-F', `${p}=@${join(dir, `${p}.npy`)}`]),
        `http://127.0.0.1:${port}/v1/jobs`,
      ]);
      const [curlSeconds, code, ...rest] = curl.stdout.toString().split(' ');
      const phases = Object.fromEntries([...rest.join(' ').matchAll(/(\w+);dur=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
      const curlApiCpu = cpuOf(api.pid!) - apiCpuCurl0;
      if (code === '201')
        console.log(
          JSON.stringify({
            mode: 'upload (curl)',
            load: loadavg(),
            seconds: Number(curlSeconds),
            MBps: bytes / 1e6 / Number(curlSeconds),
            receiveMs: phases.receive,
            receiveMBps: bytes / 1e3 / phases.receive!,
            submitMs: phases.submit,
            apiCpuSeconds: curlApiCpu,
            apiMBperCpuSecond: bytes / 1e6 / curlApiCpu,
            apiPeakRssMB: peakRss(api.pid!),
          }),
        );
    } else if (mode === 'small') {
      children.push(await worker(), await worker());
      children.push(await reducer());
      for (const [p, seed] of [
        ['q', 1],
        ['k', 2],
        ['v', 3],
      ] as const)
        writeTensor(join(dir, `${p}.npy`), [8, 1024, 64], random(8 * 1024 * 64, seed));
      const files = { q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), v: join(dir, 'v.npy') };
      const rows: Record<string, number>[] = [];
      let apiCpu0 = 0;
      for (let run = 0; run < Number(values.runs) + 2; run++) {
        if (run === 2) apiCpu0 = cpuOf(api.pid!);
        const t0 = performance.now();
        const form = new FormData();
        form.append('options', JSON.stringify({ causal: true }));
        for (const p of ['q', 'k', 'v'] as const) form.append(p, await openAsBlob(files[p]), `${p}.npy`);
        const response = await fetch(`http://127.0.0.1:${port}/v1/jobs`, {
          method: 'POST',
          body: form,
          headers: { authorization: `Bearer ${KEY}` },
        });
        const { id } = (await response.json()) as { id: string };
        const t1 = performance.now();
        // Server-Timing: receive (multipart to temp files), submit (validation, blob upload, flow).
        const timing = Object.fromEntries(
          [...(response.headers.get('server-timing') ?? '').matchAll(/(\w+);dur=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]),
        );
        const job = await client.wait(id);
        const t2 = performance.now();
        const seen = Date.now();
        await client.result(id, 'out', join(dir, 'o.npy'));
        const t3 = performance.now();
        await client.cancel(id);
        if (job.state !== 'done') throw new Error(`job ${id} ${job.state}: ${job.error}`);
        const queueMs = job.finishedAt! - job.createdAt; // accepted (upload started) → finalised, by the cluster's clocks
        const computeMs = job.finishedAt! - job.startedAt!;
        if (run >= 2)
          rows.push({
            total: t3 - t0,
            upload: t1 - t0,
            receive: timing.receive ?? 0,
            submit: timing.submit ?? 0,
            wait: t2 - t1,
            download: t3 - t2,
            compute: computeMs,
            queued: queueMs,
            // Flow added (the api's receive + submit after the request came) → the first tile job started, and finalised → the client's SSE done.
            pickup: job.startedAt! - (job.createdAt + (timing.receive ?? 0) + (timing.submit ?? 0)),
            notify: seen - job.finishedAt!,
          });
      }
      const summary = Object.fromEntries(Object.keys(rows[0]!).map((k) => [k, median(rows.map((r) => r[k as keyof typeof r]))]));
      // The API's own share: upload handling (to 201), done → client notified, download; compute and queue waits are the cluster's.
      const apiShare = summary.upload! + summary.download! + Math.max(0, summary.wait! - (summary.queued! - summary.upload!));
      console.log(
        JSON.stringify({
          mode,
          load: loadavg(),
          runs: rows.length,
          medianMs: summary,
          p90TotalMs: pct(
            rows.map((r) => r.total),
            0.9,
          ),
          apiShareMs: apiShare,
          apiCpuMsPerJob: ((cpuOf(api.pid!) - apiCpu0) * 1000) / rows.length,
        }),
      );
    } else if (mode === 'status') {
      for (let i = 0; i < Number(values.workers); i++) children.push(await worker());
      children.push(await reducer());
      const S = 16384;
      for (const [p, seed] of [
        ['q', 1],
        ['k', 2],
        ['v', 3],
      ] as const)
        writeTensor(join(dir, `${p}.npy`), [8, S, 64], random(8 * S * 64, seed));
      const { id } = await client.submit({ q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), v: join(dir, 'v.npy') }, { causal: true });
      const rate = Number(values.rate);
      const total = rate * Number(values.seconds);
      const latencies: number[] = [];
      const apiCpu0 = cpuOf(api.pid!);
      const clientCpu0 = process.cpuUsage();
      const states = new Set<string>();
      const t0 = performance.now();
      const inFlight: Promise<void>[] = [];
      for (let i = 0; i < total; i++) {
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        inFlight.push(
          (async () => {
            const s = performance.now();
            const view = await client.get(id);
            latencies.push(performance.now() - s);
            states.add(view.state);
          })(),
        );
      }
      await Promise.all(inFlight);
      const achieved = total / ((performance.now() - t0) / 1000);
      // Closed loop (one request at a time), for comparison: what one client sees with no queueing of its own.
      const sequential: number[] = [];
      for (let i = 0; i < 200; i++) {
        const s = performance.now();
        const view = await client.get(id);
        sequential.push(performance.now() - s);
        states.add(view.state);
      }
      const apiCpuMsPerRequest = ((cpuOf(api.pid!) - apiCpu0) * 1000) / total;
      console.log(
        JSON.stringify({
          mode,
          load: loadavg(),
          requests: total,
          achievedPerSecond: achieved,
          medianMs: median(latencies),
          p95Ms: pct(latencies, 0.95),
          p99Ms: pct(latencies, 0.99),
          sequentialMedianMs: median(sequential),
          sequentialP95Ms: pct(sequential, 0.95),
          apiCpuMsPerRequest,
          clientCpuSeconds: (process.cpuUsage(clientCpu0).user + process.cpuUsage(clientCpu0).system) / 1e6,
          wallSeconds: (performance.now() - t0) / 1000,
          states: [...states],
        }),
      );
      await client.cancel(id);
    } else {
      throw new Error(`unknown mode ${mode}: upload | small | status`);
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
