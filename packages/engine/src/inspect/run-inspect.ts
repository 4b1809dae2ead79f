import { availableParallelism } from 'node:os';
import { extname, resolve } from 'node:path';
import {
  InputError,
  hasPattern,
  lseShape,
  maskRule,
  rowRule,
  rowVisibleCount,
  visiblePairs,
  type AttentionSpec,
} from '@longattn/attention';
import { readTensor, writeTensor } from '@longattn/tensor';
import { Piscina } from 'piscina';
import type { Progress } from '../job.ts';
import { LOCAL_THREADS_MAX, runLocalLse } from '../local/local-engine.ts';
import { openInputs } from '../inputs.ts';
import { checkOutputPaths, type OutputPath } from '../output-paths.ts';
import type { TaskInputs } from '../local/task.ts';
import { chunkBytes, type InspectTask } from './inspect-worker.ts';
import type { ChunkRef, ChunkResult } from './chunk.ts';
import { releasedChunkGarbage } from '../young-gc.ts';
import { renderMap } from './map-png.ts';
import { InspectFold, chunksOf, mapMeans } from './report.ts';
import type { InspectRequest, InspectResult } from './request.ts';
import type { InspectSettings } from './settings.ts';
import { inspectReport } from './summary.ts';
import { writeFileAtomic } from './write-file.ts';

export interface InspectRunOptions {
  /** Pool threads of both passes; default = cores. The report's bits never depend on it. */
  threads?: number;
  /** Progress of the statistics pass (tiles = chunks, flops = 2·D per visible pair). */
  onProgress?: (progress: Progress, pass: 'lse' | 'inspect') => void;
  signal?: AbortSignal;
}

const workerFile = new URL('./inspect-worker.mjs', import.meta.url).href;

/** The settings of a request for this spec; InputError naming the flag for anything out of range. */
export function inspectSettings(spec: AttentionSpec, request: InspectRequest): InspectSettings {
  const whole = (flag: string, value: number | undefined, fallback: number, min: number) => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v < min) throw new InputError(flag, `expected an integer ≥ ${min}, got ${v}`);
    return v;
  };
  const rows = request.rows;
  if (
    rows &&
    !(Number.isSafeInteger(rows.from) && Number.isSafeInteger(rows.to) && rows.from >= 0 && rows.from < rows.to && rows.to <= spec.Sq)
  )
    throw new InputError('--rows', `expected A:B with 0 ≤ A < B ≤ Sq = ${spec.Sq}, got ${rows.from}:${rows.to}`);
  if (request.weightsOut && !rows) throw new InputError('--weights-out', 'needs --rows A:B (the rows whose weights to write)');
  const mapSize = whole('--map-size', request.mapSize, 512, 1);
  if (mapSize > 4096) throw new InputError('--map-size', `expected an integer in 1..4096, got ${mapSize}`);
  return {
    sinks: whole('--sinks-stat', request.sinksStat, 4, 0),
    local: whole('--local-stat', request.localStat, 128, 0),
    rowsFrom: rows?.from ?? 0,
    rowsTo: rows?.to ?? 0,
    topK: whole('--top-k', request.topK, 8, 0),
    weights: request.weightsOut !== undefined,
    received: request.received !== undefined,
    mapRows: request.map ? Math.min(mapSize, spec.Sq) : 0,
    mapCols: request.map ? Math.min(mapSize, spec.Sk) : 0,
  };
}

/** Refuses outputs that clash with the inputs or each other, and a --map that is not a .png, before any work. */
export function checkOutputs(request: InspectRequest): void {
  const outputs: OutputPath[] = [];
  if (request.weightsOut) outputs.push({ argument: '--weights-out', path: request.weightsOut });
  if (request.received) outputs.push({ argument: '--received', path: request.received });
  const inputs = [
    { argument: '--q', ref: request.q },
    { argument: '--k', ref: request.k },
    ...(request.lse ? [{ argument: '--lse', ref: request.lse }] : []),
  ];
  checkOutputPaths(outputs, inputs);
  if (request.map) {
    if (extname(request.map).toLowerCase() !== '.png')
      throw new InputError('--map', `expected a .png path, got ${JSON.stringify(request.map)}`);
    // The same directory and clash rules, through a stand-in of the same name in .npy; then the name itself.
    checkOutputPaths([{ argument: '--map', path: `${request.map.slice(0, -4)}.npy` }]);
    const taken = [...outputs.map((o) => o.path), ...inputs.map((i) => i.ref.split('#')[0]!)].map((p) => resolve(p));
    if (taken.includes(resolve(request.map)))
      throw new InputError('--map', `${JSON.stringify(request.map)} is already an input or output of this job; choose another path`);
  }
}

/**
 * The engine-side entry of `longattn inspect` (and of the API's inspect jobs): validates, finds each
 * row's LSE (the `--lse` file, or the LSE-only first pass runLocalLse on `run`'s tiles and
 * backends: V-free tiles, no O), then runs the statistics pass (inspectChunk) on a thread pool, folds the
 * chunks in order (InspectFold), and writes the requested files. Returns the report and the paths.
 */
export async function runInspect(request: InspectRequest, options: InspectRunOptions = {}): Promise<InspectResult> {
  const started = performance.now();
  if (request.x !== undefined) throw new InputError('--x', 'layer inputs are not supported by inspect yet; give --q and --k');
  const inputs = openInputs({
    q: request.q,
    k: request.k,
    v: request.k,
    options: request.options,
    allowNonfinite: request.allowNonfinite ?? false,
  });
  const { spec } = inputs;
  let source: TaskInputs;
  try {
    const { q, k } = inputs;
    if ([q, k].some((t) => t.dtype !== 'f32')) {
      const shared = (t: typeof q) => t.readRuns(0, 1, t.length, t.length, new Float32Array(new SharedArrayBuffer(t.length * 4)));
      const kk = shared(k);
      source = { kind: 'shared', q: shared(q), k: kk, v: kk };
    } else {
      const file = (t: typeof q) => ({ path: t.path, argument: t.argument, layout: t.layout });
      source = { kind: 'files', q: file(q), k: file(k), v: file(k) };
    }
  } finally {
    inputs.close();
  }
  const settings = inspectSettings(spec, request);
  checkOutputs(request);
  const threads = Math.min(options.threads ?? availableParallelism(), LOCAL_THREADS_MAX);
  const { lse, backend, lseMs } = await rowLse(spec, request, threads, options);
  const chunks = chunksOf(spec);
  const fold = new InspectFold(spec, settings, chunks);
  const inspectStart = performance.now();
  await statisticsPass(spec, settings, source, chunks, lse, Math.min(threads, chunks.length), fold, options);
  const inspectMs = performance.now() - inspectStart;
  const files: InspectResult['files'] = {};
  const lead = lseShape(inputs.q.shape.length, spec.B, spec.H, spec.Sq).slice(0, -1);
  if (request.received && fold.received) {
    writeTensor(request.received, [...lead, spec.Sk], Float32Array.from(fold.received));
    files.received = request.received;
  }
  if (request.weightsOut && fold.weights) {
    writeTensor(request.weightsOut, [...lead, settings.rowsTo - settings.rowsFrom, spec.Sk], fold.weights);
    files.weightsOut = request.weightsOut;
  }
  const means = fold.cells ? mapMeans(spec, settings, fold.cells) : undefined;
  if (request.map && means) {
    writeFileAtomic(request.map, await renderMap(spec, settings.mapRows, settings.mapCols, means));
    files.map = request.map;
  }
  return {
    report: inspectReport(spec, settings, fold.heads),
    files,
    lseFrom: request.lse ? 'file' : 'pass',
    backend,
    scores: fold.scores,
    threads,
    chunks: chunks.length,
    ...(means ? { mapMeans: means, mapGrid: [settings.mapRows, settings.mapCols] as [number, number] } : {}),
    lseMs,
    inspectMs,
    wallMs: performance.now() - started,
  };
}

/** `--lse`: [B,H,Sq] float32 (leading dims as Q's), finite or -Infinity; InputError('--lse') otherwise. */
export function readLseFile(spec: AttentionSpec, path: string): Float32Array {
  const given = readTensor(path, '--lse');
  if (given.data.length !== spec.B * spec.H * spec.Sq || given.shape.at(-1) !== spec.Sq)
    throw new InputError('--lse', `expected [B,H,Sq] = [${spec.B},${spec.H},${spec.Sq}], got [${given.shape.join(',')}]`);
  if (given.data.some((x) => Number.isNaN(x) || x === Infinity))
    throw new InputError('--lse', 'expected finite values or -Infinity, found NaN/+Infinity');
  return given.data;
}

/** Each row's LSE [B·H·Sq] float32: read from `--lse` (checked against the spec), or the first pass. */
async function rowLse(
  spec: AttentionSpec,
  request: InspectRequest,
  threads: number,
  options: InspectRunOptions,
): Promise<{ lse: Float32Array; backend: string | null; lseMs: number }> {
  const started = performance.now();
  if (request.lse) return { lse: readLseFile(spec, request.lse), backend: null, lseMs: performance.now() - started };
  const result = await runLocalLse(
    {
      q: request.q,
      k: request.k,
      options: request.options,
      ...(request.backend ? { backend: request.backend } : {}),
      ...(request.blockQ ? { blockQ: request.blockQ } : {}),
      ...(request.blockK ? { blockK: request.blockK } : {}),
      allowNonfinite: request.allowNonfinite ?? false,
    },
    {
      threads,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: (p: Progress) => options.onProgress?.(p, 'lse') } : {}),
    },
  );
  return { lse: result.lse, backend: result.backend, lseMs: performance.now() - started };
}

/** The (query, key) pairs a chunk's rows see: O(1) for a window or causal mask, a walk over the rows with a pattern. */
function chunkPairs(spec: AttentionSpec, c: ChunkRef): number {
  if (!hasPattern(spec)) return visiblePairs(maskRule(spec), c.rowStart, c.rows, 0, spec.Sk);
  const rule = rowRule(spec, c.h);
  let pairs = 0;
  for (let i = c.rowStart; i < c.rowStart + c.rows; i++) pairs += rowVisibleCount(rule, i, rule.rowIntervals(i), 0, spec.Sk);
  return pairs;
}

/** Runs every chunk on a pool (lanes pull chunks in order, so at most `threads` results wait to be folded). */
async function statisticsPass(
  spec: AttentionSpec,
  settings: InspectSettings,
  inputs: TaskInputs,
  chunks: readonly ChunkRef[],
  lse: Float32Array,
  threads: number,
  fold: InspectFold,
  options: InspectRunOptions,
): Promise<void> {
  const flops = chunks.map((c) => 2 * spec.D * chunkPairs(spec, c));
  const progress: Progress = { doneTiles: 0, totalTiles: chunks.length, doneFlops: 0, totalFlops: 0 };
  for (const f of flops) progress.totalFlops += f;
  options.onProgress?.({ ...progress }, 'inspect');
  const pool = new Piscina({ filename: workerFile, minThreads: threads, maxThreads: threads, idleTimeout: 1000 });
  const abort = new AbortController();
  const forward = () => abort.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', forward, { once: true });
  let next = 0;
  try {
    const lanes = Array.from({ length: threads }, async () => {
      while (next < chunks.length) {
        abort.signal.throwIfAborted();
        const index = next++;
        const chunk = chunks[index]!;
        const at = (chunk.b * spec.H + chunk.h) * spec.Sq + chunk.rowStart;
        const task: InspectTask = { spec, settings, inputs, chunks: [{ chunk, lse: lse.slice(at, at + chunk.rows) }] };
        const [result] = (await pool.run(task)) as [ChunkResult];
        fold.add(index, result);
        releasedChunkGarbage(chunkBytes(spec, result)); // folded: this copy is dead
        progress.doneTiles++;
        progress.doneFlops += flops[index]!;
        options.onProgress?.({ ...progress }, 'inspect');
      }
    });
    const stopOthers = (lane: Promise<void>) =>
      lane.catch((error: unknown) => {
        abort.abort(error); // the other lanes take no new chunk
        throw error;
      });
    const settled = await Promise.allSettled(lanes.map(stopOthers));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    options.signal?.throwIfAborted();
  } finally {
    options.signal?.removeEventListener('abort', forward);
    await pool.destroy();
  }
}
