import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unmaskedFlops, validateSpec } from '@longattn/attention';
import { availableBackends } from './backends.ts';
import { removeInputs, writeInputs } from './inputs.ts';
import { measureLayerRows } from './layer-rows.ts';
import { type LongattnContext, measureLongattn } from './longattn-row.ts';
import { measurePeer, PEERS } from './peer-rows.ts';
import type { BenchCase, BenchOptions, BenchRow } from './rows.ts';
import { formatRow } from './table.ts';

/** Self-attention FLOPs the mask leaves for n tokens, H heads. */
const flopsOf = (n: number, H: number, D: number, causal: boolean): number =>
  unmaskedFlops(validateSpec({ q: [H, n, D], k: [H, n, D], v: [H, n, D] }, { causal }));

/**
 * Every row of one bench run, in order: for each size and head count (inputs written once), for
 * each mask, every runnable backend then every peer; then the long causal row. Each row is
 * logged (formatRow) as soon as it is measured.
 */
export async function runBench(o: BenchOptions): Promise<BenchRow[]> {
  const dir = join(tmpdir(), `longattn-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const rows: BenchRow[] = [];
  const emit = (row: BenchRow) => {
    rows.push(row);
    o.log(formatRow(row));
  };
  const backends = await availableBackends(o.backends);
  for (const b of backends) if (b.skipped) o.log(`# ${b.name}: skipped (${b.skipped})`);
  const runnable = backends.filter((b) => !b.skipped).map((b) => b.name);
  const ctx: LongattnContext = { dir, threads: o.threads, reps: o.reps, budgetS: o.budgetS, rate: new Map() };
  try {
    for (const n of o.sizes) for (const H of o.heads) await benchSize(n, H, o, runnable, ctx, emit);
    if (o.long && runnable.length) await benchLong(o.long, o.D, runnable[0]!, ctx, emit);
    if (o.layer && runnable.length) {
      const { rows: layerRows, addedPercent } = await measureLayerRows(o.layer, runnable[0]!, o.threads, o.reps, dir);
      for (const row of layerRows) emit(row);
      o.log(`# layer n=${o.layer}: projections add ${addedPercent.toFixed(1)}% to the attention alone (target ≤ 35%)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** One size and head count: its inputs, then each mask through every backend and peer. */
async function benchSize(n: number, H: number, o: BenchOptions, backends: string[], ctx: LongattnContext, emit: (r: BenchRow) => void) {
  const files = writeInputs(ctx.dir, n, H, o.D);
  try {
    for (const causal of o.causal) {
      const c: BenchCase = { n, H, D: o.D, causal, files, flops: flopsOf(n, H, o.D, causal) };
      for (const backend of backends) emit(await measureLongattn(c, backend, ctx));
      if (o.peers) for (const peer of PEERS) emit(await measurePeer(peer, c, ctx));
    }
  } finally {
    removeInputs(files);
  }
}

/** n = long, one head, causal, on one backend and one run, whatever the budget: the memory-bound proof. */
async function benchLong(n: number, D: number, backend: string, ctx: LongattnContext, emit: (r: BenchRow) => void) {
  const files = writeInputs(ctx.dir, n, 1, D);
  try {
    const c: BenchCase = { n, H: 1, D, causal: true, files, flops: flopsOf(n, 1, D, true) };
    emit(await measureLongattn(c, backend, { ...ctx, reps: 1, budgetS: Infinity, rate: new Map() }));
  } finally {
    removeInputs(files);
  }
}
