import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { InputError, lseShape, strideBlocks, type Plan } from '@longattn/attention';
import { createLinear, selectBackend } from '@longattn/kernels';
import { createTensorWriter, openTensor, type TensorReader, type TensorWriter } from '@longattn/tensor';
import type { Piscina } from 'piscina';
import { resolveBlocks } from '../blocks.ts';
import { jobResult, type Progress } from '../job.ts';
import { planLimits, plannedWithinLimits } from '../limits.ts';
import { heaviestFirst } from '../local/block-order.ts';
import { LOCAL_THREADS_MAX, poolRunner, startPool, type LocalRunOptions } from '../local/local-engine.ts';
import type { FileTensor, LayerInputsOfTask, ProjectTask } from '../local/task.ts';
import { JobOutput } from '../output.ts';
import { openLayerInputs, type LayerInputs } from './layer-inputs.ts';
import { splitHeads, type Projection } from './projection.ts';
import { type LayerRequest, type LayerResult, layerResult } from './request.ts';

/**
 * Rows per projection task. Fixed (never derived from the thread count), so every row's
 * projection is the same GEMM call whatever --threads is, and the output bits with it; 512 rows
 * of d_model 1024 are 2 MB of X in flight per thread.
 */
export const PROJECT_ROWS = 512;

const file = (t: TensorReader): FileTensor => ({ path: t.path, argument: t.argument, layout: t.layout });

/**
 * One attention layer over a document on the local engine (docs/flow.md, "Layers"): validates
 * X and the weights, then on one pool of threads
 *   1. projects K and V from X (--x-kv) once, PROJECT_ROWS rows per task, RoPE on K, into
 *      float32 bhsd files in a temporary folder beside --out;
 *   2. runs the attention plan with the usual tiles, merge and order, each q-block's queries
 *      projected from X's rows in its thread (all heads of a row block at once, then reused);
 *   3. projects O (read back per row block) with o_proj into Y, writing --attn-out on the way.
 * Nothing holds X, Q, K, V or O whole; Y, O and LSE appear at their paths only when all is done.
 */
export async function runLayer(request: LayerRequest, options: LocalRunOptions = {}): Promise<LayerResult> {
  const started = performance.now();
  const requestedThreads = options.threads ?? availableParallelism();
  if (!Number.isInteger(requestedThreads) || requestedThreads < 1)
    throw new InputError('--threads', `expected an integer ≥ 1, got ${requestedThreads}`);
  const inputs = openLayerInputs(request);
  const cleanup: (() => void)[] = [() => inputs.close()];
  let pool: Piscina | undefined; // one pool for the three phases (a runner's close() would destroy it: not called)
  const writers: TensorWriter[] = [];
  try {
    const { spec } = inputs;
    const selection = await selectBackend(request.backend ?? 'auto', { threads: 1 });
    if (selection.backend.threading === 'main')
      throw new InputError('--backend', `${selection.name} runs on the main thread; a layer needs a pool backend (ort, wasm, js)`);
    const thePlan = plannedWithinLimits(
      spec,
      resolveBlocks(request, strideBlocks(spec, selection.backend.defaultBlocks)),
      planLimits(options.limits),
      'local',
    );
    const linear = request.projection ?? (await createLinear()).name;
    const threads = Math.min(requestedThreads, LOCAL_THREADS_MAX, Math.max(1, thePlan.qBlockCount));
    const { B, H, Hk, Sq: S, Sk: Skv, D } = spec;
    const rank = inputs.x.shape.length;
    const lead = rank === 3 ? [B] : [];
    const y = createTensorWriter(request.out, [...lead, S, inputs.outDim], { argument: '--out' });
    writers.push(y);
    const attn = request.attnOut
      ? createTensorWriter(request.attnOut, [...lead, S, H, D], { argument: '--attn-out', name: 'attn' })
      : undefined;
    if (attn) writers.push(attn);
    const lse = request.lse ? createTensorWriter(request.lse, lseShape(rank + 1, B, H, S), { argument: '--lse', name: 'lse' }) : undefined;
    if (lse) writers.push(lse);
    const dir = mkdtempSync(join(dirname(resolve(request.out)), '.longattn-layer-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));

    const abort = new AbortController();
    const forward = () => abort.abort(new Error('job aborted', { cause: options.signal?.reason }));
    options.signal?.addEventListener('abort', forward, { once: true });
    cleanup.push(() => options.signal?.removeEventListener('abort', forward));
    if (options.signal?.aborted) forward();

    pool = startPool(threads);
    const kv = [
      projection(inputs.weights.wk, inputs.weights.bk, inputs.ropeTheta, Hk, D),
      projection(inputs.weights.wv, inputs.weights.bv, undefined, Hk, D),
    ];
    const wo = inputs.weights.wo ? [projection(inputs.weights.wo, inputs.weights.bo, undefined, 0, D)] : [];
    const wq = projection(inputs.weights.wq, inputs.weights.bq, inputs.ropeTheta, H, D);
    const layerInputs = (k: FileTensor, v: FileTensor): LayerInputsOfTask => ({
      kind: 'layer',
      x: file(inputs.x),
      dModel: inputs.dModel,
      q: wq,
      linear,
      k,
      v,
      all: [wq, ...kv, ...wo],
    });
    const flops = layerFlops(inputs, thePlan);
    const progress: Progress = { doneTiles: 0, totalTiles: thePlan.tileCount, doneFlops: 0, totalFlops: thePlan.flops + flops.total };
    const report = () => options.onProgress?.({ ...progress });
    // The tile kernels and the projections' sessions are made and warmed before the clock starts, as in runLocal.
    await poolRunner(
      pool,
      thePlan,
      selection,
      layerInputs(file(inputs.x), file(inputs.x)),
      threads,
      (r) => abort.abort(r),
      request.lse ? 'o+lse' : 'o',
    ).warm();
    const computeStart = performance.now();
    report();

    // 1. K and V, once per job.
    const kFile = createTensorWriter(join(dir, 'k.npy'), [B, Hk, Skv, D]);
    const vFile = createTensorWriter(join(dir, 'v.npy'), [B, Hk, Skv, D]);
    await runLanes(pool, threads, rowBlocks(B, Skv), abort.signal, (b, r0, rows) => ({
      task: {
        kind: 'project',
        linear,
        source: file(inputs.xKv),
        width: inputs.xKv.shape.at(-1)!,
        firstRow: b * Skv + r0,
        rows,
        position: r0,
        projections: kv,
      },
      done: (packed) => {
        const n = rows * Hk * D;
        headMajor(kFile, packed.subarray(0, n), b, Hk, Skv, D, r0, rows);
        headMajor(vFile, packed.subarray(n, 2 * n), b, Hk, Skv, D, r0, rows);
        progress.doneFlops += flops.kvPerRow * rows;
        report();
      },
    }));
    kFile.commit();
    vFile.commit();
    const kvMs = performance.now() - computeStart;

    // 2. The attention, queries projected per row block in the threads.
    const opened = [openTensor(join(dir, 'k.npy')), openTensor(join(dir, 'v.npy'))] as const;
    cleanup.push(() => {
      for (const t of opened) t.close();
    });
    const oPath = join(dir, 'o.npy');
    const o = new JobOutput(spec, rank === 3 ? [B, H, S, D] : [H, S, D], oPath);
    const runner = poolRunner(
      pool,
      thePlan,
      selection,
      layerInputs(file(opened[0]), file(opened[1])),
      threads,
      (r) => abort.abort(r),
      request.lse ? 'o+lse' : 'o',
    );
    await runner.run(
      heaviestFirst(thePlan, true),
      (index, result) => {
        const at = thePlan.locate(index);
        o.write(at, result);
        lse?.writeRuns((at.b * H + at.h) * S + at.qStart, result.lse, at.rows, at.rows);
        progress.doneTiles += thePlan.tilesIn(index);
        progress.doneFlops += thePlan.flopsIn(index) + flops.qPerRow * (at.rows / H);
        report();
      },
      abort.signal,
    );
    o.commit();
    const attentionMs = performance.now() - computeStart - kvMs;

    // 3. o_proj (or O itself as Y), --attn-out on the way.
    const oFile = openTensor(oPath);
    cleanup.push(() => oFile.close());
    await runLanes(pool, threads, rowBlocks(B, S), abort.signal, (b, r0, rows) => ({
      task: {
        kind: 'project',
        linear,
        source: file(oFile),
        width: H * D,
        firstRow: b * S + r0,
        rows,
        position: r0,
        projections: wo,
        withInput: attn !== undefined && wo.length > 0,
        gather: { b, heads: H, S, D },
      },
      done: (packed) => {
        const n = rows * inputs.outDim;
        y.writeRuns((b * S + r0) * inputs.outDim, packed.subarray(0, n), n, n);
        const oRows = wo.length > 0 ? packed.subarray(n) : packed;
        attn?.writeRuns((b * S + r0) * H * D, oRows, oRows.length, oRows.length);
        progress.doneFlops += flops.oPerRow * rows;
        report();
      },
    }));
    const computeMs = performance.now() - computeStart;
    const outMs = computeMs - kvMs - attentionMs;
    for (const w of writers) w.commit();
    writers.length = 0;
    const result = jobResult(request, thePlan, {
      backend: selection.name,
      device: selection.device,
      engine: 'local',
      threads,
      wallMs: performance.now() - started,
      computeMs,
    });
    return layerResult(result, request.attnOut, {
      dModel: inputs.dModel,
      outDim: inputs.outDim,
      rope: inputs.ropeTheta !== undefined,
      projection: linear,
      projectionFlops: flops.total,
      kvMs,
      attentionMs,
      outMs,
    });
  } catch (error) {
    for (const w of writers) w.abort();
    throw error;
  } finally {
    await pool?.destroy();
    for (const step of cleanup.reverse()) step();
  }
}

function projection(w: TensorReader, b: TensorReader | undefined, theta: number | undefined, heads: number, D: number): Projection {
  return { w: file(w), ...(b ? { b: file(b) } : {}), ...(theta !== undefined ? { rope: { heads, D, theta } } : {}) };
}

/** FLOPs of the projections (2·in·out per row each): K/V per key row, Q and o_proj per query row. */
export function layerFlops(inputs: LayerInputs, thePlan: Pick<Plan, 'spec'>) {
  const { B, H, Hk, Sq, Sk, D } = thePlan.spec;
  const dKv = inputs.xKv.shape.at(-1)!;
  const kvPerRow = 2 * 2 * dKv * Hk * D;
  const qPerRow = 2 * inputs.dModel * H * D;
  const oPerRow = inputs.weights.wo ? 2 * H * D * inputs.outDim : 0;
  return { kvPerRow, qPerRow, oPerRow, total: B * (Sk * kvPerRow + Sq * (qPerRow + oPerRow)) };
}

/** Row blocks [b, r0, rows] of every batch, `size` (PROJECT_ROWS) rows at a time. */
export function* rowBlocks(B: number, S: number, size = PROJECT_ROWS): Generator<[number, number, number]> {
  for (let b = 0; b < B; b++) for (let r0 = 0; r0 < S; r0 += size) yield [b, r0, Math.min(size, S - r0)];
}

/** Writes [rows, heads·D] rows (bshd order) into a bhsd [B, heads, S, D] file: one run per head. */
function headMajor(out: TensorWriter, rows: Float32Array, b: number, heads: number, S: number, D: number, r0: number, count: number): void {
  splitHeads(rows, heads, D, count, (h, head) => out.writeRuns(((b * heads + h) * S + r0) * D, head, head.length, head.length));
}

/**
 * Runs tasks on the pool, 2·`threads` at a time, in order of the blocks; `done` takes each reply
 * on the main thread. Stops at the first failure or abort (the running ones finish first).
 */
async function runLanes(
  pool: Piscina,
  threads: number,
  blocks: Iterator<[number, number, number]>,
  signal: AbortSignal,
  make: (b: number, r0: number, rows: number) => { task: ProjectTask; done: (packed: Float32Array) => void },
): Promise<void> {
  let failed = false;
  // Two lanes per thread: while the main thread writes one reply, the thread already runs the next task.
  const lanes = Array.from({ length: 2 * threads }, async () => {
    try {
      for (let next = blocks.next(); !next.done && !signal.aborted && !failed; next = blocks.next()) {
        const { task, done } = make(...next.value);
        done((await pool.run(task)) as Float32Array);
      }
    } catch (error) {
      failed = true; // the other lanes take no new task
      throw error;
    }
  });
  const settled = await Promise.allSettled(lanes);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  signal.throwIfAborted();
}
