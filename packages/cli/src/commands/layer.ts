import type { Command } from 'commander';
import { checkOutputPaths, runLayer, type LayerRequest, type LayerResult } from '@longattn/engine';
import { InputError } from '@longattn/tensor';
import { parseNumber, parseInteger, parseWindow } from '../parse.ts';
import { progressBar } from '../progress-bar.ts';
import { interruptible } from '../signals.ts';
import { describeResult, peakRssMB } from '../summary.ts';
import { addEngineFlags, addPatternFlags, patternOptions, type RunFlags } from './run.ts';

interface LayerFlags extends Omit<RunFlags, 'q' | 'k' | 'v' | 'layout' | 'outDtype' | 'detach'> {
  x: string;
  xKv?: string;
  weights: string;
  prefix: string;
  heads: number;
  kvHeads?: number;
  ropeTheta?: number;
  rope: boolean;
  attnOut?: string;
}

export function layerRequest(flags: LayerFlags): LayerRequest {
  if (flags.rope === false && flags.ropeTheta !== undefined) throw new InputError('--rope-theta', 'given with --no-rope');
  return {
    x: flags.x,
    ...(flags.xKv ? { xKv: flags.xKv } : {}),
    weights: flags.weights,
    prefix: flags.prefix,
    heads: flags.heads,
    ...(flags.kvHeads !== undefined ? { kvHeads: flags.kvHeads } : {}),
    ...(flags.ropeTheta !== undefined ? { ropeTheta: flags.ropeTheta } : {}),
    rope: flags.rope,
    out: flags.out,
    ...(flags.attnOut ? { attnOut: flags.attnOut } : {}),
    ...(flags.lse ? { lse: flags.lse } : {}),
    options: {
      causal: flags.causal ?? false,
      ...(flags.window ? { window: flags.window } : {}),
      ...(flags.scale !== undefined ? { scale: flags.scale } : {}),
      ...patternOptions(flags),
    },
    backend: flags.backend,
    ...(flags.blockQ ? { blockQ: flags.blockQ } : {}),
    ...(flags.blockK ? { blockK: flags.blockK } : {}),
    allowNonfinite: flags.allowNonfinite ?? false,
  };
}

/** One human line block about a finished layer. */
export function describeLayer(r: LayerResult): string {
  const l = r.layer;
  return [
    describeResult(r).replace(`O → ${r.out}`, `Y → ${r.out}${r.attnOut ? `, O → ${r.attnOut}` : ''}`),
    `  layer    d_model ${l.dModel} → ${l.outDim}, RoPE ${l.rope ? 'on' : 'off'}, projections on ${l.projection}: ` +
      `${(l.projectionFlops / 1e9).toFixed(2)} GFLOP (K/V ${(l.kvMs / 1000).toFixed(2)} s, attention with Q ${(l.attentionMs / 1000).toFixed(2)} s, o_proj ${(l.outMs / 1000).toFixed(2)} s)`,
  ].join('\n');
}

/** The outputs and inputs of a layer request, for checkOutputPaths. */
function layerPaths(request: LayerRequest): Parameters<typeof checkOutputPaths> {
  return [
    [
      { argument: '--out', path: request.out },
      ...(request.attnOut ? [{ argument: '--attn-out', path: request.attnOut }] : []),
      ...(request.lse ? [{ argument: '--lse', path: request.lse }] : []),
    ],
    [
      { argument: '--x', ref: request.x },
      ...(request.xKv ? [{ argument: '--x-kv', ref: request.xKv }] : []),
      { argument: '--weights', ref: request.weights },
    ],
  ];
}

/** Runs a layer request on the local engine (or with --engine queue, on Redis workers) with a progress bar. */
export async function executeLayer(
  request: LayerRequest,
  flags: Pick<LayerFlags, 'threads' | 'json' | 'quiet'> & Partial<Pick<LayerFlags, 'engine' | 'redis' | 'blobs'>>,
): Promise<LayerResult> {
  checkOutputPaths(...layerPaths(request));
  const queue = flags.engine === 'queue';
  if (queue && !flags.redis) throw new InputError('--redis', 'required with --engine queue (e.g. --redis redis://127.0.0.1:6379)');
  const bar = progressBar(!flags.json && !flags.quiet, queue ? 'layer (queue): projections, attention, o_proj' : 'layer');
  try {
    if (queue) {
      const { runLayerQueue } = await import('@longattn/engine/queue');
      return await interruptible((signal) =>
        runLayerQueue(request, { redis: flags.redis!, ...(flags.blobs ? { blobs: flags.blobs } : {}), onProgress: bar.update, signal }),
      );
    }
    return await interruptible((signal) =>
      runLayer(request, { ...(flags.threads ? { threads: flags.threads } : {}), onProgress: bar.update, signal }),
    );
  } finally {
    bar.stop();
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('layer')
    .description('one attention layer Y = concat_heads(softmax(QKᵀ)V)·Woᵀ + bo from hidden states X and Hugging Face weights')
    .requiredOption('--x <ref>', 'hidden states [S, d_model] or [B, S, d_model]: file.npy or file.safetensors#name')
    .option('--x-kv <ref>', 'keys/values source for cross-attention (RoPE off)')
    .requiredOption('--weights <path>', '.safetensors with q_proj/k_proj/v_proj(/o_proj).weight (and optional .bias)')
    .option('--prefix <p>', 'tensor name prefix, e.g. model.layers.0.self_attn.', '')
    .requiredOption('--heads <h>', 'query heads H (D = q_proj rows / H)', parseInteger('--heads', 1, 1 << 16))
    .option('--kv-heads <hk>', 'key/value heads (GQA; default --heads)', parseInteger('--kv-heads', 1, 1 << 16))
    .option('--rope-theta <t>', 'RoPE base (Hugging Face rotate_half; default 10000)', parseNumber('--rope-theta'))
    .option('--no-rope', 'no rotary embedding')
    .requiredOption('--out <path>', 'output Y [.., S, d_model] (or [.., S, H·D] without o_proj), float32')
    .option('--attn-out <path>', 'also write O [B, S, H, D] (bshd)')
    .option('--lse <path>', 'output log-sum-exp [B, H, S]')
    .option('--causal', 'bottom-right aligned causal mask')
    .option('--window <L,R>', 'sliding window, inclusive; -1 = unbounded side', parseWindow)
    .option('--scale <s>', 'softmax scale (default 1/√D)', parseNumber('--scale'))
    .option('--allow-nonfinite', 'let NaN/Inf inputs through instead of refusing them')
    .option('--api <url>', 'with --engine queue: submit through the HTTP API (key from LONGATTN_API_KEY)');
  addEngineFlags(addPatternFlags(cmd)).action(async (flags: LayerFlags) => {
    if (flags.api) {
      const request = layerRequest(flags);
      checkOutputPaths(...layerPaths(request)); // nothing written yet, but a bad --out is said at once
      return (await import('../api-run.ts')).runLayerViaApi(request, { ...flags, api: flags.api });
    }
    const result = await executeLayer(layerRequest(flags), flags);
    if (flags.json) console.log(JSON.stringify({ ...result, peakRssMB: peakRssMB() }));
    else if (!flags.quiet) console.log(describeLayer(result));
  });
}
