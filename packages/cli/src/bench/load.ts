import { loadavg } from 'node:os';

/** The 1-minute load average over a bench run: before it started, at its end, and its mean and peak in between. */
export interface LoadSummary {
  start: number;
  end: number;
  mean: number;
  peak: number;
}

/** Samples the 1-minute load average every `everyMs` until stopped (the timer never keeps the process alive). */
export function sampleLoad(everyMs = 5000): { stop: () => LoadSummary } {
  const start = loadavg()[0]!;
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(loadavg()[0]!), everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      const end = loadavg()[0]!;
      const all = [...samples, end];
      return { start, end, mean: all.reduce((a, b) => a + b, 0) / all.length, peak: Math.max(...all) };
    },
  };
}

/**
 * Whether others loaded the machine: more than half a core busy before the run, or a mean load
 * during it above what the run itself adds (its `threads`) plus one.
 */
export const wasLoaded = (load: LoadSummary, threads: number): boolean => load.start > 0.5 || load.mean > threads + 1;
