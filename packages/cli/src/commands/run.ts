import { Option, type Command } from 'commander';
import {
  checkOutputPaths,
  linearErrorReport,
  runLocal,
  type InputRef,
  type JobRequest,
  type JobResult,
  type OutputPath,
} from '@longattn/engine';
import { checkOutDtype, InputError, type OutDType } from '@longattn/tensor';
import type { PatternOptions } from '@longattn/attention';
import { readBlockMask } from '../block-mask.ts';
import { parseChoice, parseInteger, parseNumber, parseWindow } from '../parse.ts';
import { progressBar } from '../progress-bar.ts';
import { interruptible } from '../signals.ts';
import { describeErrorReport, describeResult, peakRssMB } from '../summary.ts';

export interface RunFlags {
  q: string;
  k: string;
  v: string;
  out: string;
  lse?: string;
  outDtype?: OutDType;
  layout: 'bhsd' | 'bshd';
  causal?: boolean;
  window?: { left: number; right: number };
  scale?: number;
  sinks?: number;
  global?: number[];
  stride?: number;
  blockMask?: string;
  maskBlock?: number;
  linear?: boolean;
  reportError?: number;
  backend: string;
  engine: 'local' | 'queue';
  redis?: string;
  api?: string;
  blobs?: string;
  threads?: number;
  blockQ?: number;
  blockK?: number;
  allowNonfinite?: boolean;
  detach?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/** `--out-dtype` (run and result): O's element type. */
export const OUT_DTYPE = parseChoice('--out-dtype', ['f32', 'f16', 'bf16'] as const);

export function requestFromFlags(flags: RunFlags): JobRequest {
  return {
    q: flags.q,
    k: flags.k,
    v: flags.v,
    out: flags.out,
    ...(flags.lse ? { lse: flags.lse } : {}),
    ...(flags.outDtype ? { outDtype: flags.outDtype } : {}),
    options: {
      layout: flags.layout,
      causal: flags.causal ?? false,
      ...(flags.window ? { window: flags.window } : {}),
      ...(flags.scale !== undefined ? { scale: flags.scale } : {}),
      ...patternOptions(flags),
      ...(flags.linear ? { linear: true } : {}),
    },
    backend: flags.backend,
    ...(flags.blockQ ? { blockQ: flags.blockQ } : {}),
    ...(flags.blockK ? { blockK: flags.blockK } : {}),
    allowNonfinite: flags.allowNonfinite ?? false,
  };
}

/**
 * The pattern flags as spec options (docs/contracts.md, "Pattern flags"); a block mask is read
 * here, whole (it is small: docs/limits.md), and checked against Q/K's shapes by validateSpec.
 */
export function patternOptions(flags: Pick<RunFlags, 'sinks' | 'global' | 'stride' | 'blockMask' | 'maskBlock'>): {
  pattern?: PatternOptions;
} {
  if ((flags.blockMask === undefined) !== (flags.maskBlock === undefined)) {
    throw new InputError(
      flags.blockMask === undefined ? '--mask-block' : '--block-mask',
      'needs --block-mask M.npy and --mask-block B together',
    );
  }
  const pattern: PatternOptions = {
    ...(flags.sinks !== undefined ? { sinks: flags.sinks } : {}),
    ...(flags.global !== undefined ? { global: flags.global } : {}),
    ...(flags.stride !== undefined ? { stride: flags.stride } : {}),
    ...(flags.blockMask !== undefined ? { blockMask: { block: flags.maskBlock!, ...readBlockMask(flags.blockMask) } } : {}),
  };
  return Object.keys(pattern).length > 0 ? { pattern } : {};
}

/** `--global I,J,…`: positions ≥ 0. */
function parsePositions(text: string): number[] {
  return text.split(',').map((part) => parseInteger('--global', 0)(part));
}

/** Adds the pattern flags (run, and later layer/inspect). */
export function addPatternFlags(cmd: Command): Command {
  return cmd
    .option('--sinks <n>', 'every query also sees keys 0 … N−1 (attention sinks)', parseInteger('--sinks', 0, 1 << 30))
    .option('--global <I,J,…>', 'global positions: rows I,J,… see every key, every row sees keys I,J,…', parsePositions)
    .option('--stride <s>', 'query i sees key j when (pos(i) − j) mod S = 0', parseInteger('--stride', 1, 1 << 30))
    .option('--block-mask <path>', 'block mask .npy [nQb,nKb] or [H,nQb,nKb]: nonzero = visible (with --mask-block)')
    .option('--mask-block <b>', 'block size of --block-mask', parseInteger('--mask-block', 1, 1 << 30));
}

/** Adds the job flags shared by `run` and `demo`-like commands. */
export function addEngineFlags(cmd: Command): Command {
  return cmd
    .option('--backend <name>', 'auto | js | wasm | ort | gpujs[:MODE] | webgpu[:MODE]', 'auto')
    .option(
      '--engine <engine>',
      'local (embedded thread pool) | queue (Redis workers)',
      parseChoice('--engine', ['local', 'queue'] as const),
      'local',
    )
    .option('--redis <url>', 'Redis URL for --engine queue')
    .addOption(
      new Option(
        '--blobs <where>',
        'with --engine queue, where the job’s bytes live: redis (the queue’s) | fs:DIR (a directory every worker sees at the same path)' +
          ' | s3://BUCKET/PREFIX (S3, MinIO…; AWS_* settings)',
      ).env('LONGATTN_BLOBS'),
    )
    .option('--threads <n>', 'pool threads (default: cores)', parseInteger('--threads', 1, 1024))
    .option('--block-q <n>', 'query rows per tile (default: per backend)', parseInteger('--block-q', 1, 1 << 20))
    .option('--block-k <n>', 'keys per tile (default: per backend)', parseInteger('--block-k', 1, 1 << 20))
    .option('--json', 'print one JSON object with timings, GFLOP/s, backend, tiles')
    .option('--quiet', 'print nothing on success');
}

/** The outputs and inputs of a request, for checkOutputPaths. */
export function requestPaths(request: JobRequest): [OutputPath[], InputRef[]] {
  return [
    [{ argument: '--out', path: request.out }, ...(request.lse ? [{ argument: '--lse', path: request.lse }] : [])],
    [
      { argument: '--q', ref: request.q },
      { argument: '--k', ref: request.k },
      { argument: '--v', ref: request.v },
    ],
  ];
}

/**
 * Runs a request on the chosen engine with a progress bar; returns the result. Outputs that would
 * overwrite an input or each other are refused first; Ctrl-C / SIGTERM stop the job (signals.ts).
 */
export async function execute(
  request: JobRequest,
  flags: Pick<RunFlags, 'engine' | 'redis' | 'blobs' | 'threads' | 'json' | 'quiet'>,
  label: string,
): Promise<JobResult> {
  checkOutputPaths(...requestPaths(request));
  const bar = progressBar(!flags.json && !flags.quiet, label);
  try {
    return await interruptible(async (signal) => {
      if (flags.engine === 'queue') {
        const { runOnQueue } = await import('../queue-run.ts');
        return await runOnQueue(request, flags, bar.update, signal);
      }
      return await runLocal(request, { ...(flags.threads ? { threads: flags.threads } : {}), onProgress: bar.update, signal });
    });
  } finally {
    bar.stop();
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('run')
    .description('exact attention O = softmax(scale·QKᵀ + mask)·V over .npy/.safetensors inputs')
    .requiredOption('--q <ref>', 'queries: file.npy or file.safetensors#name')
    .requiredOption('--k <ref>', 'keys')
    .requiredOption('--v <ref>', 'values')
    .requiredOption('--out <path>', 'output O (.npy or .safetensors), Q’s shape and layout')
    .option('--lse <path>', 'output log-sum-exp [B,H,Sq]')
    .option('--out-dtype <dtype>', 'O’s element type: f32 | f16 | bf16 (bf16: .safetensors only); LSE stays f32', OUT_DTYPE)
    .option('--layout <layout>', 'bhsd (PyTorch) | bshd (FlashAttention)', parseChoice('--layout', ['bhsd', 'bshd'] as const), 'bhsd')
    .option('--causal', 'bottom-right aligned causal mask (FlashAttention ≥ 2.1)')
    .option('--window <L,R>', 'sliding window, inclusive; -1 = unbounded side', parseWindow)
    .option('--scale <s>', 'softmax scale (default 1/√D)', parseNumber('--scale'))
    .option('--allow-nonfinite', 'let NaN/Inf inputs through instead of refusing them')
    .option('--linear', 'linear attention (elu+1 features): an approximation, not softmax; no mask but --causal, no --lse')
    .option(
      '--report-error <n>',
      'with --linear: max error against exact softmax on N sampled rows (seeded)',
      parseInteger('--report-error', 1, 1 << 24),
    )
    .addHelpText('after', '\nPattern flags combine as a union (with --window); --causal then intersects (docs/math.md).')
    .option('--detach', 'with --engine queue: submit, print the job id and return')
    .option('--api <url>', 'with --engine queue: submit through the HTTP API (key from LONGATTN_API_KEY)');
  addEngineFlags(addPatternFlags(cmd)).action(async (flags: RunFlags) => {
    if (flags.outDtype) checkOutDtype(flags.out, flags.outDtype); // before any work, --detach included
    if (flags.reportError !== undefined && !flags.linear) throw new InputError('--report-error', 'only with --linear');
    if (flags.reportError !== undefined && (flags.detach || flags.api))
      throw new InputError('--report-error', `not with ${flags.detach ? '--detach' : '--api'}: it reads the output when the run ends`);
    const request = requestFromFlags(flags);
    if (flags.api || flags.detach) checkOutputPaths(...requestPaths(request)); // nothing written yet, but a bad --out is said at once
    if (flags.api) {
      if ((flags.outDtype ?? 'f32') !== 'f32')
        throw new InputError('--out-dtype', 'not available with --api: the API returns float32 .npy');
      return (await import('../api-run.ts')).runViaApi(request, { ...flags, api: flags.api });
    }
    if (flags.detach) {
      const { submitDetached } = await import('../queue-run.ts');
      const jobId = await submitDetached(request, flags);
      console.log(flags.json ? JSON.stringify({ jobId }) : jobId);
      return;
    }
    const result = await execute(request, flags, flags.linear ? 'linear attention' : 'attention');
    const report = flags.reportError !== undefined ? { reportError: linearErrorReport(request, flags.reportError) } : {};
    if (flags.json) console.log(JSON.stringify({ ...result, ...report, peakRssMB: peakRssMB() }));
    else if (!flags.quiet) console.log(describeResult(result) + (report.reportError ? `\n${describeErrorReport(report.reportError)}` : ''));
  });
}
