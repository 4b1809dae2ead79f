import { readFileSync } from 'node:fs';
import { uniformF32 } from '@longattn/tensor';

/** Sizes every peer takes: one batch, H heads of Sq queries and Sk keys, head dim D. */
export interface PeerOptions {
  Sq: number;
  Sk: number;
  H: number;
  D: number;
  /** Threads the peer may use in all. */
  threads: number;
  /** Timed runs after one warm-up. */
  reps: number;
  causal?: boolean;
}

/**
 * Per-run wall times, GFLOP/s of the median run (dense count 4·Sq·Sk·D·H), the process's peak RSS,
 * and per-run CPU time of the whole process (all threads): on a shared machine, FLOP per CPU
 * second says what a peer would do on idle cores when wall times are inflated by others' load.
 */
export interface PeerResult {
  ms: number[];
  cpuMs: number[];
  gflops: number;
  peakRssMB: number;
}

export interface PeerSkipped {
  skipped: string;
}

/** Deterministic uniform float32 numbers in [-2, 2) (mulberry32): every peer times the same inputs. */
export function peerInput(n: number, seed: number): Float32Array {
  return uniformF32(n, seed);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Dense attention FLOPs per second, in GFLOP/s, for one run of `ms` milliseconds. */
export function denseGflops(o: Pick<PeerOptions, 'Sq' | 'Sk' | 'D' | 'H'>, ms: number): number {
  return (4 * o.Sq * o.Sk * o.D * o.H) / (ms * 1e6);
}

/** Peak resident set of this process (VmHWM), in MiB. */
export function peakRssMB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Bytes the kernel may still take (MemAvailable), for "will S×S fit" checks. */
export function availableBytes(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Times `run` reps times after one warm-up: wall and process CPU milliseconds per run. */
export async function timeRuns(reps: number, run: () => Promise<unknown>): Promise<{ ms: number[]; cpuMs: number[] }> {
  await run();
  const ms: number[] = [];
  const cpuMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1000);
  }
  return { ms, cpuMs };
}
