import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unmaskedFlops, validateSpec } from '@longattn/attention';
import { listBackends } from '@longattn/kernels';
import { writeTensor } from '@longattn/tensor';
import { makeSample } from '../sample.ts';
import { measureRun } from './measure.ts';
import { median } from './peers/peer-common.ts';
import { coldNumpy, coldOrtMha, type ColdInputs } from './peers/cold-runs.ts';
import { runNumpy } from './peers/numpy-peer.ts';
import { runOrtMha } from './peers/ort-mha.ts';
import type { PeerOptions, PeerResult, PeerSkipped } from './peers/peer-common.ts';

export interface BenchOptions {
  backends: string[];
  sizes: number[];
  heads: number[];
  D: number;
  causal: boolean[];
  threads: number;
  reps: number;
  peers: boolean;
  /** Skip a row whose estimated time exceeds this many seconds (estimated from the last row). */
  budgetS: number;
  /** Also run n = long, H = 1, causal on the first backend (memory-bound proof). */
  long?: number;
  log: (line: string) => void;
}

/** One line of the table. GFLOP/s count only unmasked work (4·Sq·Sk·D·H, halved-ish for causal). */
export interface BenchRow {
  who: string;
  n: number;
  H: number;
  D: number;
  causal: boolean;
  /** Median kernel-phase time (ms) for longattn; median per-run time for peers (after a warm-up). */
  ms?: number;
  /**
   * Median wall time of the whole process: `longattn run`, or the peer's cold run (a fresh
   * process that loads the same .npy inputs, computes once and saves its output).
   */
  processMs?: number;
  gflops?: number;
  peakRssMB?: number;
  skipped?: string;
}

function inputs(dir: string, n: number, H: number, D: number) {
  const sample = makeSample({ n, H, D, seed: n + H });
  const files = { q: join(dir, `q-${n}-${H}.npy`), k: join(dir, `k-${n}-${H}.npy`), v: join(dir, `v-${n}-${H}.npy`) };
  writeTensor(files.q, [H, n, D], sample.q);
  writeTensor(files.k, [H, n, D], sample.k);
  writeTensor(files.v, [H, n, D], sample.v);
  return files;
}

/** Backends to measure: the requested ones, each only if its probe says it can run here. */
export async function availableBackends(requested: string[]): Promise<{ name: string; skipped?: string }[]> {
  const names = requested.length ? requested : listBackends().map((b) => b.name);
  return Promise.all(
    names.map(async (name) => {
      const backend = listBackends().find((b) => b.name === name.split(':')[0]);
      const reason = !backend ? 'not registered' : await backend.probe(name.includes(':') ? { mode: name.split(':')[1]! } : {});
      return reason ? { name, skipped: reason } : { name };
    }),
  );
}

/** The peers: timed warm in their own process, and as cold whole processes. */
const PEERS: {
  who: string;
  warm: (o: PeerOptions) => Promise<PeerResult | PeerSkipped>;
  cold: (o: ColdInputs) => Promise<number | PeerSkipped>;
}[] = [
  { who: 'onnxruntime MultiHeadAttention', warm: runOrtMha, cold: coldOrtMha },
  { who: 'numpy naive', warm: runNumpy, cold: coldNumpy },
];

export async function runBench(o: BenchOptions): Promise<BenchRow[]> {
  const dir = join(tmpdir(), `longattn-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const rows: BenchRow[] = [];
  const rate = new Map<string, number>(); // last measured GFLOP/s per backend, for time estimates
  const backends = await availableBackends(o.backends);
  const emit = (row: BenchRow) => {
    rows.push(row);
    o.log(formatRow(row));
  };
  try {
    for (const b of backends.filter((b) => b.skipped)) o.log(`# ${b.name}: skipped (${b.skipped})`);
    for (const n of o.sizes) {
      for (const H of o.heads) {
        const files = inputs(dir, n, H, o.D);
        for (const causal of o.causal) {
          const flops = unmaskedFlops(validateSpec({ q: [H, n, o.D], k: [H, n, o.D], v: [H, n, o.D] }, { causal }));
          for (const { name } of backends.filter((b) => !b.skipped)) {
            const base: BenchRow = { who: `longattn ${name}`, n, H, D: o.D, causal };
            const est = rate.has(name) ? flops / 1e9 / rate.get(name)! : 0;
            if (est > o.budgetS) {
              emit({ ...base, skipped: `est. ${est.toFixed(0)} s > budget ${o.budgetS} s` });
              continue;
            }
            const args = [
              '--q',
              files.q,
              '--k',
              files.k,
              '--v',
              files.v,
              '--out',
              join(dir, 'out.npy'),
              '--backend',
              name,
              '--threads',
              String(o.threads),
              ...(causal ? ['--causal'] : []),
            ];
            const reps = est * o.reps > o.budgetS ? 1 : o.reps;
            const runs = [];
            for (let r = 0; r < reps; r++) runs.push(await measureRun(args));
            const ms = median(runs.map((r) => r.result.computeMs));
            rate.set(name, flops / 1e6 / ms);
            emit({
              ...base,
              ms,
              processMs: median(runs.map((r) => r.processMs)),
              gflops: flops / 1e6 / ms,
              peakRssMB: Math.max(...runs.map((r) => r.result.peakRssMB)),
            });
          }
          if (o.peers) {
            const opts = { Sq: n, Sk: n, H, D: o.D, threads: o.threads, reps: o.reps, causal };
            const cold: ColdInputs = { files, dir, H, S: n, D: o.D, threads: o.threads, reps: o.reps, causal };
            for (const peer of PEERS) {
              const base: BenchRow = { who: peer.who, n, H, D: o.D, causal };
              try {
                const r = await peer.warm(opts);
                if ('skipped' in r) {
                  emit({ ...base, skipped: r.skipped });
                  continue;
                }
                const processMs = await peer.cold(cold);
                // Peers compute the dense problem even when causal (masking does not save them work).
                emit({
                  ...base,
                  ms: median(r.ms),
                  ...(typeof processMs === 'number' ? { processMs } : {}),
                  gflops: flops / 1e6 / median(r.ms),
                  peakRssMB: r.peakRssMB,
                });
              } catch (error) {
                emit({ ...base, skipped: `failed: ${(error as Error).message.split('\n')[0]}` });
              }
            }
          }
        }
        rmSync(files.q);
        rmSync(files.k);
        rmSync(files.v);
      }
    }
    if (o.long) {
      const first = backends.find((b) => !b.skipped)!.name;
      const files = inputs(dir, o.long, 1, o.D);
      const flops = unmaskedFlops(validateSpec({ q: [1, o.long, o.D], k: [1, o.long, o.D], v: [1, o.long, o.D] }, { causal: true }));
      const run = await measureRun([
        '--q',
        files.q,
        '--k',
        files.k,
        '--v',
        files.v,
        '--out',
        join(dir, 'out.npy'),
        '--backend',
        first,
        '--threads',
        String(o.threads),
        '--causal',
      ]);
      emit({
        who: `longattn ${first}`,
        n: o.long,
        H: 1,
        D: o.D,
        causal: true,
        ms: run.result.computeMs,
        processMs: run.processMs,
        gflops: flops / 1e6 / run.result.computeMs,
        peakRssMB: run.result.peakRssMB,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

export const TABLE_HEADER =
  '| who | n | H | D | mask | ms (median) | process ms | GFLOP/s | peak RSS MB |\n|---|---:|---:|---:|---|---:|---:|---:|---:|';

export function formatRow(r: BenchRow): string {
  const mask = r.causal ? 'causal' : 'dense';
  if (r.skipped) return `| ${r.who} | ${r.n} | ${r.H} | ${r.D} | ${mask} | skipped: ${r.skipped} | | | |`;
  return `| ${r.who} | ${r.n} | ${r.H} | ${r.D} | ${mask} | ${r.ms!.toFixed(1)} | ${r.processMs?.toFixed(0) ?? ''} | ${r.gflops!.toFixed(1)} | ${r.peakRssMB!.toFixed(0)} |`;
}
