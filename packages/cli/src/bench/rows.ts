/**
 * One row of the bench: who ran, on what problem, and what it measured (or why it was skipped).
 * GFLOP/s count only the work the mask leaves (4·Sq·Sk·D·H dense, about half of it causal), for
 * longattn and peers alike: the peers compute the dense problem even when causal, so on causal
 * rows compare their times, not their GFLOP/s.
 */
export interface BenchRow {
  who: string;
  n: number;
  H: number;
  D: number;
  causal: boolean;
  /** Median compute-phase time (ms) for longattn; the peer's median per-run time after a warm-up. */
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

/** What the bench measures and how hard it tries. */
export interface BenchOptions {
  /** Backend names (`gpujs:webasm` picks a mode); empty: every registered one that can run here. */
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
  /** Also run the layer target at n = layer on the first backend (layer-rows.ts). */
  layer?: number;
  log: (line: string) => void;
}

/** One problem the bench measures: every backend and peer runs it on the same .npy inputs. */
export interface BenchCase {
  n: number;
  H: number;
  D: number;
  causal: boolean;
  /** [H, n, D] float32 inputs. */
  files: { q: string; k: string; v: string };
  /** Unmasked FLOPs of the case (the GFLOP/s numerator). */
  flops: number;
}

/** The row's fixed part: who ran which case. */
export const rowBase = (who: string, c: BenchCase): BenchRow => ({ who, n: c.n, H: c.H, D: c.D, causal: c.causal });
