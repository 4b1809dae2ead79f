import type { JobRequest, JobResult, LayerRequest } from '@longattn/engine';
import { InputError } from '@longattn/tensor';
import type { JobView, LongattnClient } from '@longattn/client';
import type { JobOptions } from '@longattn/engine/api';
import { encodeBlockMask } from './block-mask.ts';
import { progressBar } from './progress-bar.ts';
import { describeResult, peakRssMB } from './summary.ts';

/** `--api URL` code paths of run / status / cancel / result: the HTTP API through @longattn/client. */

async function client(url: string): Promise<LongattnClient> {
  const key = process.env.LONGATTN_API_KEY;
  if (!key) throw new InputError('LONGATTN_API_KEY', 'required with --api (the tenant’s API key)');
  try {
    new URL(url);
  } catch {
    throw new InputError('--api', `expected the API's URL like http://host:8080, got ${JSON.stringify(url)}`);
  }
  const { LongattnClient } = await import('@longattn/client');
  return new LongattnClient({ url, key });
}

/** ApiError → InputError (exit 2) for 4xx answers, so the one line names what was wrong. */
async function calling<T>(what: () => Promise<T>): Promise<T> {
  try {
    return await what();
  } catch (error) {
    const e = error as { name?: string; status?: number; field?: string; message: string };
    if (e.name === 'ApiError' && e.status !== undefined && e.status < 500 && e.status !== 409) {
      const argument = e.status === 401 ? 'LONGATTN_API_KEY' : e.status === 404 ? 'JOB' : (e.field ?? '--api');
      throw new InputError(argument, e.field ? e.message.slice(e.field.length + 2) : e.message);
    }
    if (e.name === 'TypeError' && /fetch failed/.test(e.message)) throw new InputError('--api', `cannot reach the API: ${e.message}`);
    throw error;
  }
}

/** The API gives .npy results. */
function checkNpy(flag: string, path: string | undefined): void {
  if (path !== undefined && !path.endsWith('.npy'))
    throw new InputError(flag, `with --api, results are .npy files, got ${JSON.stringify(path)}`);
}

/** A `file.safetensors#name` ref → the file and the tensor name. */
function splitRef(ref: string): { path: string; name?: string } {
  const at = ref.indexOf('#');
  return at < 0 ? { path: ref } : { path: ref.slice(0, at), name: ref.slice(at + 1) };
}

/**
 * The options every kind shares as the API takes them, from a request's spec options: mask,
 * window and pattern flags in camelCase, and the block mask as the `mask` part's bytes.
 */
function sharedOptions(request: Pick<JobRequest, 'options' | 'backend' | 'blockQ' | 'blockK' | 'allowNonfinite'>): {
  options: Partial<JobOptions>;
  mask?: Uint8Array;
} {
  const { window, scale, pattern, linear } = request.options;
  const mask = pattern?.blockMask;
  return {
    options: {
      causal: request.options.causal ?? false,
      ...(window ? { window: [window.left, window.right] as [number, number] } : {}),
      ...(scale !== undefined ? { scale } : {}),
      ...(linear ? { linear: true } : {}),
      ...(pattern?.sinks !== undefined ? { sinks: pattern.sinks } : {}),
      ...(pattern?.global !== undefined ? { global: pattern.global } : {}),
      ...(pattern?.stride !== undefined ? { stride: pattern.stride } : {}),
      ...(mask ? { maskBlock: mask.block } : {}),
      backend: request.backend ?? 'auto',
      ...(request.blockQ ? { blockQ: request.blockQ } : {}),
      ...(request.blockK ? { blockK: request.blockK } : {}),
      allowNonfinite: request.allowNonfinite ?? false,
    },
    ...(mask ? { mask: encodeBlockMask(mask.shape, mask.cells) } : {}),
  };
}

function resultOf(request: Pick<JobRequest, 'out' | 'lse'>, view: JobView, wallMs: number): JobResult {
  const computeMs = view.startedAt && view.finishedAt ? view.finishedAt - view.startedAt : wallMs;
  const shape = view.shape ?? { B: 0, H: 0, Hk: 0, Sq: 0, Sk: 0, D: 0 };
  return {
    out: request.out,
    ...(request.lse ? { lse: request.lse } : {}),
    backend: view.backends.join(',') || String(view.options.backend ?? 'auto'),
    device: 'api',
    engine: 'queue',
    threads: view.workers,
    blockQ: view.blockQ ?? 0,
    blockK: view.blockK ?? 0,
    tiles: view.progress.total,
    skippedTiles: 0,
    flops: view.flops.total,
    wallMs,
    computeMs,
    gflops: view.flops.total / 1e6 / Math.max(computeMs, 1e-3),
    shape,
    ...(view.approximation === 'linear' ? { approximation: 'linear' as const } : {}),
  };
}

/** `run --engine queue --api URL [--detach]`: upload, follow the events with a progress bar, download O (and LSE). */
export async function runViaApi(
  request: JobRequest,
  flags: { api: string; engine: string; detach?: boolean; json?: boolean; quiet?: boolean },
): Promise<void> {
  if (flags.engine !== 'queue') throw new InputError('--api', 'needs --engine queue');
  checkNpy('--out', request.out);
  checkNpy('--lse', request.lse);
  const started = performance.now();
  const api = await client(flags.api);
  const refs = { q: splitRef(request.q), k: splitRef(request.k), v: splitRef(request.v) };
  const names = Object.fromEntries(Object.entries(refs).flatMap(([part, r]) => (r.name ? [[part, r.name]] : [])));
  const { options, mask } = sharedOptions(request);
  const { id } = await calling(() =>
    api.submit(
      { q: refs.q.path, k: refs.k.path, v: refs.v.path, ...(mask ? { mask } : {}) },
      {
        layout: request.options.layout ?? 'bhsd',
        ...options,
        ...(Object.keys(names).length ? { tensors: names } : {}),
      },
    ),
  );
  if (flags.detach) {
    console.log(flags.json ? JSON.stringify({ jobId: id }) : id);
    return;
  }
  await collect(api, id, request, flags, 'attention', started);
}

/**
 * `layer --engine queue --api URL`: uploads X, the weights (and --x-kv), follows the job (every
 * stage in one bar), downloads Y (result/out) and LSE.
 */
export async function runLayerViaApi(
  request: LayerRequest,
  flags: { api: string; engine: string; json?: boolean; quiet?: boolean },
): Promise<void> {
  if (flags.engine !== 'queue') throw new InputError('--api', 'needs --engine queue');
  checkNpy('--out', request.out);
  checkNpy('--attn-out', request.attnOut);
  checkNpy('--lse', request.lse);
  const started = performance.now();
  const api = await client(flags.api);
  const x = splitRef(request.x);
  const xKv = request.xKv ? splitRef(request.xKv) : undefined;
  const names = { ...(x.name ? { x: x.name } : {}), ...(xKv?.name ? { 'x-kv': xKv.name } : {}) };
  const { options, mask } = sharedOptions(request);
  const { id } = await calling(() =>
    api.submitLayer(
      { x: x.path, weights: request.weights, ...(xKv ? { xKv: xKv.path } : {}), ...(mask ? { mask } : {}) },
      {
        heads: request.heads,
        ...(request.kvHeads !== undefined ? { kvHeads: request.kvHeads } : {}),
        ...(request.prefix ? { prefix: request.prefix } : {}),
        ...(request.ropeTheta !== undefined ? { ropeTheta: request.ropeTheta } : {}),
        ...(request.rope === false ? { noRope: true } : {}),
        ...options,
        ...(Object.keys(names).length ? { tensors: names } : {}),
      },
    ),
  );
  await collect(api, id, { ...request, extra: request.attnOut ? { attn: request.attnOut } : {} }, flags, 'layer (api)', started);
}

/** Follows a submitted job with a progress bar, downloads its out (LSE, a layer's attn) and prints the summary. */
async function collect(
  api: LongattnClient,
  id: string,
  request: Pick<JobRequest, 'out' | 'lse'> & { extra?: { attn?: string } },
  flags: { json?: boolean; quiet?: boolean },
  label: string,
  started: number,
): Promise<void> {
  const bar = progressBar(!flags.json && !flags.quiet, label);
  let view: JobView;
  try {
    view = await api.wait(id, (e) =>
      bar.update({ doneTiles: e.done, totalTiles: e.total, doneFlops: e.doneFlops, totalFlops: e.totalFlops }),
    );
  } finally {
    bar.stop();
  }
  if (view.state !== 'done') throw new Error(`job ${id} ${view.state}${view.error ? `: ${view.error}` : ''}`);
  await api.result(id, 'out', request.out);
  if (request.extra?.attn) await api.result(id, 'attn', request.extra.attn);
  if (request.lse) await api.result(id, 'lse', request.lse);
  const result = resultOf(request, view, performance.now() - started);
  if (flags.json) console.log(JSON.stringify({ ...result, jobId: id, peakRssMB: peakRssMB() }));
  else if (!flags.quiet) console.log(describeResult(result));
}

/** `status JOB --api URL [--json]`. */
export async function statusViaApi(job: string, flags: { api: string; json?: boolean }): Promise<void> {
  const view = await calling(async () => (await client(flags.api)).get(job));
  if (flags.json) console.log(JSON.stringify(view));
  else {
    const s = view.shape;
    console.log(
      `${view.id}  ${view.state}  ${view.progress.done}/${view.progress.total} tiles` +
        (s ? `  B=${s.B} H=${s.H} Sq=${s.Sq} Sk=${s.Sk} D=${s.D}` : '') +
        (view.error ? `\n  error: ${view.error}` : ''),
    );
  }
}

/** `cancel JOB --api URL`. */
export async function cancelViaApi(job: string, flags: { api: string; quiet?: boolean }): Promise<void> {
  const { was } = await calling(async () => (await client(flags.api)).cancel(job));
  if (!flags.quiet) console.log(`${job}: cancelled (was ${was})`);
}

/** `result JOB --out O [--lse LSE] --api URL`: downloads a done job's result (it stays on the server until cancelled). */
export async function resultViaApi(job: string, flags: { api: string; out: string; lse?: string; quiet?: boolean }): Promise<void> {
  checkNpy('--out', flags.out);
  checkNpy('--lse', flags.lse);
  const api = await client(flags.api);
  const view = await calling(() => api.get(job));
  if (view.state !== 'done') throw new Error(`job ${job} is ${view.state}${view.error ? `: ${view.error}` : ''}; no result to collect`);
  await calling(() => api.result(job, 'out', flags.out));
  if (flags.lse) await calling(() => api.result(job, 'lse', flags.lse!));
  if (!flags.quiet) console.log(`${job}: O → ${flags.out}${flags.lse ? `, LSE → ${flags.lse}` : ''}`);
}
