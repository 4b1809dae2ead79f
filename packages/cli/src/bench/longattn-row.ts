import { join } from 'node:path';
import { measureRun } from './measure.ts';
import { median } from './peers/peer-common.ts';
import { type BenchCase, type BenchRow, rowBase } from './rows.ts';

/** What a longattn row needs besides its case: where to write, how hard to try, and the rates measured so far. */
export interface LongattnContext {
  dir: string;
  threads: number;
  reps: number;
  budgetS: number;
  /** Last measured GFLOP/s per backend, for time estimates; updated by each measured row. */
  rate: Map<string, number>;
}

/** `longattn run` arguments for a case on a backend. */
function runArgs(c: BenchCase, backend: string, ctx: LongattnContext): string[] {
  const { q, k, v } = c.files;
  const out = join(ctx.dir, 'out.npy');
  return [
    '--q',
    q,
    '--k',
    k,
    '--v',
    v,
    '--out',
    out,
    '--backend',
    backend,
    '--threads',
    String(ctx.threads),
    ...(c.causal ? ['--causal'] : []),
  ];
}

/**
 * One backend on one case: `reps` whole `longattn run` processes (one when that would exceed the
 * budget), median compute phase and process time, the largest peak RSS. Skipped when the time
 * estimated from the backend's last rate exceeds the budget.
 */
export async function measureLongattn(c: BenchCase, backend: string, ctx: LongattnContext): Promise<BenchRow> {
  const base = rowBase(`longattn ${backend}`, c);
  const last = ctx.rate.get(backend);
  const est = last ? c.flops / 1e9 / last : 0;
  if (est > ctx.budgetS) return { ...base, skipped: `est. ${est.toFixed(0)} s > budget ${ctx.budgetS} s` };
  const reps = est * ctx.reps > ctx.budgetS ? 1 : ctx.reps;
  const runs = [];
  for (let r = 0; r < reps; r++) runs.push(await measureRun(runArgs(c, backend, ctx)));
  const ms = median(runs.map((r) => r.result.computeMs));
  ctx.rate.set(backend, c.flops / 1e6 / ms);
  return {
    ...base,
    ms,
    processMs: median(runs.map((r) => r.processMs)),
    gflops: c.flops / 1e6 / ms,
    peakRssMB: Math.max(...runs.map((r) => r.result.peakRssMB)),
  };
}
