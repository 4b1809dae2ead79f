import { Worker } from 'node:worker_threads';
import { denseGflops, median, peakRssMB, timeRuns, type PeerOptions, type PeerResult } from './peer-common.ts';
import { runPeer } from './peer-process.ts';

/**
 * Not a peer but the baseline they are compared with: longattn's own `ort` backend without any
 * engine — tiles of every q-block run on `workers` worker threads (each with its own kernel of
 * threads/workers intra-op threads, pulling q-blocks from a shared counter) and merged in key order.
 */
export interface OrtTilesOptions extends PeerOptions {
  /** Worker threads (default: threads, i.e. one 1-thread session each). */
  workers?: number;
  blockQ?: number;
  blockK?: number;
}

/** What a worker gets: the sizes and a shared q-block counter. */
export interface OrtTilesWorkerData {
  opts: Required<OrtTilesOptions>;
  sessionThreads: number;
  counter: SharedArrayBuffer;
}

export async function measureOrtTiles(opts: OrtTilesOptions): Promise<PeerResult> {
  const workers = opts.workers ?? opts.threads;
  const full: Required<OrtTilesOptions> = { causal: false, blockQ: 256, blockK: 2048, ...opts, workers };
  const counter = new SharedArrayBuffer(4);
  const data: OrtTilesWorkerData = { opts: full, sessionThreads: Math.max(1, Math.floor(opts.threads / workers)), counter };
  // tsx's --import hooks do not reach worker threads here (Node 20): register tsx in the worker first.
  const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const file = JSON.stringify(new URL('./ort-tiles-worker.ts', import.meta.url).href);
  const entry = `import(${api}).then((tsx) => { tsx.register(); return import(${file}); })`;
  const pool = Array.from({ length: workers }, () => new Worker(entry, { eval: true, workerData: data }));
  await Promise.all(pool.map((w) => new Promise((resolve, reject) => w.once('message', resolve).once('error', reject))));
  const round = (): Promise<unknown> => {
    new Int32Array(counter)[0] = 0;
    return Promise.all(
      pool.map(
        (w) =>
          new Promise((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
            w.postMessage('run');
          }),
      ),
    );
  };
  const { ms, cpuMs } = await timeRuns(opts.reps, round);
  await Promise.all(pool.map((w) => w.terminate()));
  return { ms, cpuMs, gflops: denseGflops(opts, median(ms)), peakRssMB: peakRssMB() };
}

/** The baseline in its own process. */
export function runOrtTiles(opts: OrtTilesOptions): Promise<PeerResult> {
  return runPeer('ort-tiles', opts) as Promise<PeerResult>;
}
