import type { Command } from 'commander';
import { runInspect, type InspectRequest, type InspectResult, type Progress } from '@longattn/engine';
import { runInspectQueue } from '@longattn/engine/queue';
import { InputError } from '@longattn/tensor';
import { parseChoice, parseInteger, parseNumber, parseWindow } from '../parse.ts';
import { progressBar } from '../progress-bar.ts';
import { interruptible } from '../signals.ts';
import { peakRssMB } from '../summary.ts';
import { addEngineFlags, addPatternFlags, patternOptions, type RunFlags } from './run.ts';

export interface InspectFlags
  extends Pick<
    RunFlags,
    | 'layout'
    | 'causal'
    | 'window'
    | 'scale'
    | 'sinks'
    | 'global'
    | 'stride'
    | 'blockMask'
    | 'maskBlock'
    | 'backend'
    | 'engine'
    | 'redis'
    | 'blobs'
    | 'threads'
    | 'blockQ'
    | 'blockK'
  > {
  q?: string;
  k?: string;
  x?: string;
  weights?: string;
  lse?: string;
  rows?: { from: number; to: number };
  topK?: number;
  sinksStat?: number;
  localStat?: number;
  weightsOut?: string;
  received?: string;
  map?: string;
  mapSize?: number;
  allowNonfinite?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/** `--rows A:B`: query rows A … B−1. */
export function parseRows(text: string): { from: number; to: number } {
  const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(text);
  const from = m ? Number(m[1]) : NaN;
  const to = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from >= to)
    throw new InputError('--rows', `expected A:B with integers 0 ≤ A < B, got ${JSON.stringify(text)}`);
  return { from, to };
}

/** The request of the flags; InputError for a missing input or what inspect cannot do yet. */
export function inspectRequest(flags: InspectFlags): InspectRequest {
  if (flags.x !== undefined || flags.weights !== undefined)
    throw new InputError(flags.x !== undefined ? '--x' : '--weights', 'layer inputs are not supported by inspect yet; give --q and --k');
  if (!flags.q) throw new InputError('--q', 'required (queries: file.npy or file.safetensors#name)');
  if (!flags.k) throw new InputError('--k', 'required (keys: file.npy or file.safetensors#name)');
  const optional = <K extends keyof InspectFlags>(key: K) => (flags[key] !== undefined ? { [key]: flags[key] } : {});
  return {
    q: flags.q,
    k: flags.k,
    options: {
      layout: flags.layout,
      causal: flags.causal ?? false,
      ...optional('window'),
      ...optional('scale'),
      ...patternOptions(flags),
    },
    ...optional('lse'),
    ...optional('rows'),
    ...optional('topK'),
    ...optional('sinksStat'),
    ...optional('localStat'),
    ...optional('weightsOut'),
    ...optional('received'),
    ...optional('map'),
    ...optional('mapSize'),
    backend: flags.backend,
    ...optional('blockQ'),
    ...optional('blockK'),
    allowNonfinite: flags.allowNonfinite ?? false,
  } as InspectRequest;
}

const fixed = (x: number | null, digits: number) => (x === null ? '–' : x.toFixed(digits));

/** One table line: b, h, rows, entropy, distance, sink share, local share, right-aligned. */
const WIDTHS = [3, 3, 8, 9, 10, 9, 10];
const columns = (cells: string[]) => `  ${cells.map((c, i) => c.padStart(WIDTHS[i]!)).join(' ')}`;

/** The readable report: one line per head, then the top-k lists, then where the files went. */
export function describeInspect(result: InspectResult): string {
  const { report } = result;
  const lines = [
    `inspect  B=${report.shape.B} H=${report.shape.H} Sq=${report.shape.Sq} Sk=${report.shape.Sk} D=${report.shape.D}; LSE from ${
      result.lseFrom === 'file' ? '--lse' : `a first pass (${result.backend})`
    } in ${(result.lseMs / 1000).toFixed(2)} s, statistics in ${(result.inspectMs / 1000).toFixed(2)} s on ${result.threads} threads (score tiles: ${result.scores})`,
    columns(['b', 'h', 'rows', 'entropy', 'distance', `sink<${report.sinksStat}`, `local≤${report.localStat}`]),
  ];
  for (const h of report.heads) {
    lines.push(
      columns([
        String(h.b),
        String(h.h),
        String(h.rows),
        fixed(h.entropy, 3),
        fixed(h.meanDistance, 1),
        fixed(h.sinkShare, 3),
        fixed(h.localShare, 3),
      ]),
    );
  }
  for (const h of report.heads) {
    for (const row of h.top) {
      const keys = row.keys.map(([j, p]) => `${j}:${p.toFixed(4)}`).join(' ');
      lines.push(`  top b=${h.b} h=${h.h} row ${row.row}: ${row.lse === null ? '(sees no key)' : keys}`);
    }
  }
  for (const [flag, path] of Object.entries(result.files))
    lines.push(`  ${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} → ${path}`);
  return lines.join('\n');
}

/** Runs an inspect request with a progress bar per pass; Ctrl-C / SIGTERM stop it (signals.ts). */
export async function executeInspect(
  request: InspectRequest,
  flags: Pick<InspectFlags, 'engine' | 'redis' | 'blobs' | 'threads' | 'json' | 'quiet'>,
): Promise<InspectResult> {
  const show = !flags.json && !flags.quiet;
  if (flags.engine === 'queue') return inspectOnQueue(request, flags, show);
  let bar = progressBar(show, request.lse ? 'inspect' : 'inspect: LSE pass');
  let pass: 'lse' | 'inspect' = 'lse';
  try {
    return await interruptible((signal) =>
      runInspect(request, {
        ...(flags.threads ? { threads: flags.threads } : {}),
        signal,
        onProgress: (progress: Progress, now) => {
          if (now !== pass) {
            bar.stop();
            bar = progressBar(show, 'inspect: statistics');
            pass = now;
          }
          bar.update(progress);
        },
      }),
    );
  } finally {
    bar.stop();
  }
}

/** `--engine queue`: both passes in one bar (LSE tiles, then chunks); a signal cancels the job. */
async function inspectOnQueue(
  request: InspectRequest,
  flags: Pick<InspectFlags, 'redis' | 'blobs'>,
  show: boolean,
): Promise<InspectResult> {
  if (!flags.redis) throw new InputError('--redis', 'required with --engine queue (e.g. --redis redis://127.0.0.1:6379)');
  const redis = flags.redis;
  const bar = progressBar(show, request.lse ? 'inspect (queue)' : 'inspect (queue): LSE pass, then statistics');
  try {
    return await interruptible((signal) =>
      runInspectQueue(request, { redis, ...(flags.blobs ? { blobs: flags.blobs } : {}), signal, onProgress: (p) => bar.update(p) }),
    );
  } finally {
    bar.stop();
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('inspect')
    .description('exact attention patterns from each row’s LSE: per-head statistics, top-k keys, received attention, maps')
    .option('--q <ref>', 'queries: file.npy or file.safetensors#name')
    .option('--k <ref>', 'keys')
    .option('--x <ref>', '(layer inputs: not yet supported)')
    .option('--weights <file>', '(layer inputs: not yet supported)')
    .option('--lse <ref>', 'the rows’ LSE [B,H,Sq] (skips the first pass)')
    .option('--layout <layout>', 'bhsd (PyTorch) | bshd (FlashAttention)', parseChoice('--layout', ['bhsd', 'bshd'] as const), 'bhsd')
    .option('--causal', 'bottom-right aligned causal mask (FlashAttention ≥ 2.1)')
    .option('--window <L,R>', 'sliding window, inclusive; -1 = unbounded side', parseWindow)
    .option('--scale <s>', 'softmax scale (default 1/√D)', parseNumber('--scale'))
    .option('--rows <A:B>', 'rows whose top-k keys (and --weights-out rows) to report', parseRows)
    .option('--top-k <n>', 'keys listed per row of --rows (default 8)', parseInteger('--top-k', 0, 1 << 20))
    .option('--sinks-stat <n>', 'sinkShare: weight on keys j < N (default 4)', parseInteger('--sinks-stat', 0))
    .option('--local-stat <w>', 'localShare: weight on keys with |pos(i) − j| ≤ W (default 128)', parseInteger('--local-stat', 0))
    .option('--weights-out <path>', 'the exact weight rows of --rows, [B,H,B−A,Sk] float32')
    .option('--received <path>', 'Σ_i p_ij per key, [B,H,Sk] float32')
    .option('--map <png>', 'a map per head of the mean weight per (query, key) cell, log colour scale')
    .option('--map-size <n>', 'map cells per side (default 512)', parseInteger('--map-size', 1, 4096))
    .option('--allow-nonfinite', 'let NaN/Inf inputs through instead of refusing them');
  cmd.addHelpText('after', '\nPattern flags combine as a union (with --window); --causal then intersects (docs/math.md).');
  addEngineFlags(addPatternFlags(cmd)).action(async (flags: InspectFlags) => {
    const result = await executeInspect(inspectRequest(flags), flags);
    if (flags.json) console.log(JSON.stringify({ ...result.report, run: runInfo(result) }));
    else if (!flags.quiet) console.log(describeInspect(result));
  });
}

/** The non-report part of `--json`: timings, where the LSE came from, files written, peak memory. */
function runInfo(result: InspectResult) {
  const { report: _report, mapMeans: _means, ...rest } = result;
  return { ...rest, peakRssMB: peakRssMB() };
}
