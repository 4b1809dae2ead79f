import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { maxAbsDiff, referenceRows, validateSpec } from '@longattn/attention';
import { checkOutputPaths } from '@longattn/engine';
import { InputError, readTensor, writeTensor } from '@longattn/tensor';
import { parseInteger } from '../parse.ts';
import { inspectDemo } from '../demo-inspect.ts';
import { makeSample, type Planted } from '../sample.ts';
import { layerDemo, MISTRAL } from '../demo-layer.ts';
import { describeResult, peakRssMB } from '../summary.ts';
import { interruptible } from '../signals.ts';
import { describeInspect } from './inspect.ts';
import { describeLayer } from './layer.ts';
import { addEngineFlags, execute, type RunFlags } from './run.ts';

interface DemoFlags extends Pick<RunFlags, 'backend' | 'engine' | 'redis' | 'blobs' | 'threads' | 'blockQ' | 'blockK' | 'json' | 'quiet'> {
  n?: number;
  heads: number;
  inspect?: boolean;
  layer?: boolean;
  d: number;
  dir: string;
}

/**
 * Largest tensor the demo makes (n·heads·D elements, 2^27 = 512 MiB of float32): it holds Q, K, V
 * and then O whole in memory to verify rows, ~4× this. A bigger document belongs to `run`.
 */
export const DEMO_ELEMENTS_MAX = 2 ** 27;

/** Rows checked against the float64 reference in every head: first, last and a spread between. */
function sampleRows(n: number): number[] {
  return [...new Set([0, 1, Math.floor(n / 3), Math.floor(n / 2), n - 2, n - 1].filter((i) => i >= 0 && i < n))];
}

export function register(program: Command): void {
  const cmd = program
    .command('demo')
    .description('make a sample long document’s Q/K/V, run causal attention on it, verify sampled rows, summarise')
    .option('--n <tokens>', 'document length (default 32768; 4096 with --inspect)', parseInteger('--n', 2))
    .option('--heads <H>', 'attention heads', parseInteger('--heads', 1, 256), 8)
    .option('--d <D>', 'head dim', parseInteger('--d', 1, 1024), 64)
    .option('--dir <dir>', 'where inputs and outputs go', 'longattn-demo')
    .option('--inspect', 'plant structure in some heads, then show that `inspect` finds it (statistics, map.png, received.npy)')
    .option(
      '--layer',
      'a Mistral-shaped layer (d_model 1024, 16/4 heads, D 64, window 4095 + 4 sinks) on a bf16 X [n, 1024], sampled rows of Y verified',
    );
  addEngineFlags(cmd).action((flags: DemoFlags) => interruptible((signal) => demo(flags, signal)));
}

/** The demo: sample inputs, the job, the check; a signal stops it between steps (signals.ts). */
async function demo(flags: DemoFlags, signal: AbortSignal): Promise<void> {
  const say = (line: string) => {
    if (!flags.json && !flags.quiet) console.log(line);
  };
  if (flags.layer) return demoLayer(flags, signal, say);
  const { heads: H, d: D } = flags;
  const n = flags.n ?? (flags.inspect ? 4096 : 32768); // inspect's second pass is plain float64 JS: a shorter default
  if (n * H * D > DEMO_ELEMENTS_MAX) {
    throw new InputError(
      '--n',
      `a ${n}-token demo with ${H} heads × D=${D} needs ${n * H * D} elements per tensor, more than the demo's ${DEMO_ELEMENTS_MAX} (docs/limits.md)`,
    );
  }
  const dir = resolve(flags.dir);
  mkdirSync(dir, { recursive: true });
  say(`longattn demo: a ${n}-token sample document, ${H} heads × D=${D}, causal self-attention`);
  const sample = makeSample({ n, H, D, seed: 7, planted: flags.inspect ?? false });
  const shape = [H, n, D];
  const files = { q: `${dir}/q.npy`, k: `${dir}/k.npy`, v: `${dir}/v.npy`, out: `${dir}/out.npy`, lse: `${dir}/lse.npy` };
  checkOutputPaths(
    [
      { argument: '--dir', path: files.out },
      { argument: '--dir', path: files.lse },
    ],
    [files.q, files.k, files.v].map((ref) => ({ argument: '--dir', ref })),
  );
  writeTensor(files.q, shape, sample.q);
  writeTensor(files.k, shape, sample.k);
  writeTensor(files.v, shape, sample.v);
  signal.throwIfAborted();
  say(`  inputs   ${files.q}, k.npy, v.npy  [${shape.join(', ')}] float32`);
  const result = await execute(
    {
      q: files.q,
      k: files.k,
      v: files.v,
      out: files.out,
      lse: files.lse,
      options: { causal: true },
      backend: flags.backend,
      ...(flags.blockQ ? { blockQ: flags.blockQ } : {}),
      ...(flags.blockK ? { blockK: flags.blockK } : {}),
    },
    flags,
    'demo',
  );
  // Spot-check sampled rows of every head against the float64 reference (exactness rule, docs/math.md).
  const spec = validateSpec({ q: shape, k: shape, v: shape }, { causal: true });
  const out = readTensor(files.out).data;
  const lse = readTensor(files.lse).data;
  const rows = sampleRows(n);
  let worst = 0;
  let bound = Infinity;
  let lseErr = 0;
  for (let h = 0; h < H; h++) {
    const { ref, naive } = referenceRows(spec, sample.q, sample.k, sample.v, 0, h, rows);
    const ours = new Float32Array(rows.length * D);
    const oursLse = new Float32Array(rows.length);
    rows.forEach((i, r) => {
      ours.set(out.subarray((h * n + i) * D, (h * n + i + 1) * D), r * D);
      oursLse[r] = lse[h * n + i]!;
    });
    worst = Math.max(worst, maxAbsDiff(ours, ref.out));
    bound = Math.min(bound, 2 * maxAbsDiff(naive.out, ref.out) + 1e-5);
    lseErr = Math.max(lseErr, maxAbsDiff(oursLse, ref.lse));
  }
  const exact = worst <= bound && lseErr <= 1e-4;
  if (flags.json) {
    const inspected =
      exact && flags.inspect && sample.planted ? await showInspect({ ...files, dir }, n, sample.planted, flags, signal) : {};
    console.log(
      JSON.stringify({
        ...result,
        verified: { rows: rows.length * H, maxAbsErr: worst, bound, lseMaxAbsErr: lseErr, exact },
        dir,
        ...inspected,
      }),
    );
  } else if (!flags.quiet) {
    console.log(describeResult(result));
    console.log(
      `  verified ${rows.length * H} sampled rows against the float64 reference: max |err| ${worst.toExponential(2)} (bound ${bound.toExponential(2)}), LSE ${lseErr.toExponential(2)} → ${exact ? 'exact' : 'NOT EXACT'}`,
    );
    console.log(`  outputs  ${files.out} [${shape.join(', ')}], ${files.lse} [${H}, ${n}]`);
  }
  if (!exact) throw new Error(`demo output failed verification: max |err| ${worst} > bound ${bound} or LSE error ${lseErr} > 1e-4`);
  if (!flags.json && flags.inspect && sample.planted) await showInspect({ ...files, dir }, n, sample.planted, flags, signal);
}

/**
 * `--inspect`: the statistics of every head, then each planted structure and what inspect found
 * (printed; with --json returned for the demo's one object). Fails the demo if a structure is missed.
 */
async function showInspect(
  files: { q: string; k: string; lse: string; dir: string },
  n: number,
  planted: Planted,
  flags: DemoFlags,
  signal: AbortSignal,
): Promise<object> {
  const { result, findings } = await inspectDemo(files, n, planted, flags.threads, signal);
  if (!flags.json && !flags.quiet) {
    console.log(describeInspect(result));
    for (const f of findings) console.log(`  planted in head ${f.head}: ${f.planted} → ${f.found} ${f.ok ? '✓ found' : '✗ NOT FOUND'}`);
  }
  const missed = findings.filter((f) => !f.ok);
  if (missed.length)
    throw new Error(`inspect did not find what was planted: ${missed.map((f) => `head ${f.head} (${f.planted})`).join(', ')}`);
  return { inspect: { ...result.report, planted: findings, files: result.files } };
}

/** `--layer` (demo-layer.ts): X and weights made on disk, the layer run, sampled rows verified; bounded memory at any n. */
async function demoLayer(flags: DemoFlags, signal: AbortSignal, say: (line: string) => void): Promise<void> {
  if (flags.engine === 'queue') throw new InputError('--engine', 'demo --layer runs on the local engine only for now');
  if (flags.inspect) throw new InputError('--layer', 'not with --inspect');
  const n = flags.n ?? 32768;
  const dir = resolve(flags.dir);
  mkdirSync(dir, { recursive: true });
  const { dModel, H, Hk, D, window, sinks } = MISTRAL;
  say(
    `longattn demo --layer: a ${n}-token bf16 document X [${n}, ${dModel}], Mistral-shaped layer: ${H} heads / ${Hk} kv heads × D=${D}, causal window (${window}, 0) + ${sinks} sinks, RoPE`,
  );
  const { result, verified, files } = await layerDemo(
    n,
    dir,
    {
      backend: flags.backend,
      ...(flags.threads ? { threads: flags.threads } : {}),
      ...(flags.blockQ ? { blockQ: flags.blockQ } : {}),
      ...(flags.blockK ? { blockK: flags.blockK } : {}),
      progress: !flags.json && !flags.quiet,
    },
    signal,
  );
  if (flags.json) console.log(JSON.stringify({ ...result, verified, dir, peakRssMB: peakRssMB() }));
  else if (!flags.quiet) {
    console.log(describeLayer(result));
    console.log(
      `  verified rows ${verified.rows.join(', ')} of Y against float64: max |err| ${verified.maxAbsErr.toExponential(2)} (bound ${verified.bound.toExponential(2)}) → ${verified.exact ? 'exact' : 'NOT EXACT'}`,
    );
    console.log(`  files    ${files.x}, ${files.weights} → ${files.out}; peak RSS ${peakRssMB().toFixed(0)} MB`);
  }
  if (!verified.exact)
    throw new Error(`demo --layer output failed verification: max |err| ${verified.maxAbsErr} > bound ${verified.bound}`);
}
