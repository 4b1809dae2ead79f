import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { InputError, LINEAR_BLOCKS, strideBlocks, type AttentionSpec, type Plan, type TilePartial } from '@longattn/attention';
import { getBackend, parseBackendName, selectBackend, type Selection } from '@longattn/kernels';
import type { TensorReader } from '@longattn/tensor';
import { Piscina } from 'piscina';
import type { BlockOutputs } from '../block-outputs.ts';
import { resolveBlocks } from '../blocks.ts';
import { computeQBlock, warmKernel } from '../compute-block.ts';
import { linearBackend } from '../linear-block.ts';
import { openInputs, type JobInputs } from '../inputs.ts';
import { jobResult, type JobRequest, type JobResult, type Progress } from '../job.ts';
import { planLimits, plannedWithinLimits, type PlanLimits } from '../limits.ts';
import { JobOutput, LseOutput } from '../output.ts';
import { unpackPartials } from '../packed.ts';
import { byWork, heaviestFirst } from './block-order.ts';
import { ownTaskSource } from './task-source.ts';
import { taskSpec } from './task-spec.ts';
import type { LayerInputsOfTask, LocalTask, TaskInputs } from './task.ts';

export interface LocalRunOptions {
  /** Pool threads; default = cores. Output bits never depend on it. */
  threads?: number;
  onProgress?: (progress: Progress) => void;
  /** Aborting stops the running tasks and removes pending (uncommitted) outputs. */
  signal?: AbortSignal;
  /** Planning limits; default planLimits() (environment). Only maxTileArea applies here. */
  limits?: Partial<PlanLimits>;
}

const workerFile = new URL('./tile-worker.mjs', import.meta.url).href;

/**
 * Most kernel work per pool task: 4 GFLOP is ≥ 20 ms on the fastest CPU backend here (≤ 5% for
 * the ~1 ms round trip) and a few seconds on the slowest shapes (D = 1), so progress keeps coming.
 */
const TASK_FLOPS = 4e9;

/** Most tiles per pool task: a kernel call costs ≥ ~10 µs, so 2048 of them outweigh the round trip 20×. */
const TASK_TILES = 2048;

/**
 * Most pool threads a local run starts, whatever --threads asks (docs/limits.md). A run uses no
 * more threads than it has q-blocks, and starts no more than the cores before it knows how many
 * it has: an idle thread still costs ~14 MB (--threads 256 on a 16 KB input held 3.66 GB).
 */
export const LOCAL_THREADS_MAX = 64;

/** Copies a whole input tensor into shared memory as float32 so every pool thread reads it in place. */
function loadShared(reader: TensorReader): Float32Array {
  const shared = new Float32Array(new SharedArrayBuffer(reader.length * 4));
  return reader.readRuns(0, 1, reader.length, reader.length, shared);
}

/**
 * float32 inputs are read by each thread straight from the files, block by block; anything else
 * is converted once into shared memory (converting f16 per tile would cost more than the copy).
 * `noValues` (the LSE-only pass reads no V): V is K's copy, not a second one.
 */
function taskInputs(inputs: JobInputs, noValues = false): TaskInputs {
  const { q, k, v } = inputs;
  const file = (t: TensorReader) => ({ path: t.path, argument: t.argument, layout: t.layout });
  if ([q, k, v].every((t) => t.dtype === 'f32')) return { kind: 'files', q: file(q), k: file(k), v: file(v) };
  const kk = loadShared(k);
  return { kind: 'shared', q: loadShared(q), k: kk, v: noValues ? kk : loadShared(v) };
}

/**
 * Computes q-blocks (indices into the plan, in the order given), calling `done` with each one's
 * merged result as it completes; stops at the first failure or abort.
 */
/**
 * Runs q-blocks in `order`; `done` gets each one's result and must consume it before it returns
 * (the pool runner reuses a reply's memory for a later task: fresh memory costs page faults).
 */
export type BlockRunner = (
  order: Iterable<number>,
  done: (index: number, result: TilePartial) => void,
  signal: AbortSignal,
) => Promise<void>;

export interface Runner {
  /** Starts threads and creates their kernels, so the compute phase measures compute only. */
  warm(): Promise<void>;
  run: BlockRunner;
  close(): Promise<void>;
}

/** A pool of `threads` threads, started now: they load their code while the caller does other work. */
export function startPool(threads: number): Piscina {
  return new Piscina({ filename: workerFile, minThreads: threads, maxThreads: threads, idleTimeout: 1000 });
}

/** Piscina pool: q-blocks run in parallel threads that share the inputs' memory. */
export function poolRunner(
  pool: Piscina,
  thePlan: Plan,
  selection: Selection,
  inputs: TaskInputs | LayerInputsOfTask,
  threads: number,
  stop: (reason: unknown) => void,
  outputs: BlockOutputs = 'o+lse',
): Runner {
  const { spec, blockQ, blockK } = thePlan;
  const width = outputs === 'lse' ? 0 : spec.D; // an LSE-only reply packs [rows, 0] runs: lse alone
  const run = randomUUID();
  const shipped = taskSpec(spec); // once: a block mask's cells cross into shared memory, not into every task
  const task = (indices: number[], warm?: LocalTask['warm'], release?: LocalTask['release'], reuse?: Float32Array): LocalTask => ({
    spec: shipped,
    run,
    blockQ,
    blockK,
    indices,
    ...(warm ? { warm } : {}),
    ...(release ? { release } : {}),
    ...(outputs === 'o+lse' ? {} : { outputs }),
    ...(reuse ? { reuse } : {}),
    backend: selection.name,
    kernelOptions: selection.options,
    inputs,
  });
  return {
    async warm() {
      const warm = { barrier: new SharedArrayBuffer(4), threads };
      await Promise.all(Array.from({ length: threads }, () => pool.run(task([], warm))));
    },
    // Tasks carry several q-blocks (each round trip through the pool costs ~1 ms here): about 16
    // tasks per thread so the pool still drains evenly, and at most TASK_FLOPS / TASK_TILES each so a
    // long job reports progress every few seconds. They carry indices only, and the next task is
    // cut from the order when a lane is free, so nothing grows with the job's size.
    // One lane per thread pulls the next task: at most `threads` tasks are in flight, so an abort
    // or a failure stops after the running ones finish (no task is torn down mid-way — piscina
    // then reports "Unexpected message from Worker" for the result already on its way).
    async run(order, done, signal) {
      const perThread = (n: number) => Math.max(1, n / (threads * 16));
      const groups = byWork(order, thePlan, {
        flops: Math.min(TASK_FLOPS, perThread(thePlan.flops)),
        tiles: Math.min(TASK_TILES, perThread(thePlan.tileCount)),
      });
      const lanes = Array.from({ length: threads }, async () => {
        // The last reply's memory goes back with the next task (moved, not copied): a thread then
        // writes its q-blocks into pages already touched. Fresh memory costs ~4 ms of page faults per
        // MB on this machine kind (docs/math.md, "Where a run's compute phase went").
        let spare: Float32Array | undefined;
        for (let next = groups.next(); !next.done && !signal.aborted; next = groups.next()) {
          const group = next.value;
          const reuse = spare;
          spare = undefined;
          const packed = (await pool.run(
            task(group, undefined, undefined, reuse),
            reuse ? { transferList: [reuse.buffer as ArrayBuffer] } : {},
          )) as Float32Array;
          const rows = group.map((index) => ({ rows: thePlan.locate(index).rows, kStart: 0 }));
          unpackPartials(packed, rows, width).forEach((result, i) => {
            done(group[i]!, result);
          });
          spare = new Float32Array(packed.buffer);
        }
      });
      const stopOnFailure = (lane: Promise<void>) =>
        lane.catch((error: unknown) => {
          stop(error);
          throw error;
        });
      const settled = await Promise.allSettled(lanes.map(stopOnFailure));
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      signal.throwIfAborted();
    },
    // The LSE-only pass (inspect) runs on in the same process: each thread first releases its
    // kernels' native memory, which thread teardown would leave behind (thread-kernels.ts).
    async close() {
      if (outputs === 'lse') {
        const release = { barrier: new SharedArrayBuffer(4), threads };
        await Promise.all(Array.from({ length: threads }, () => pool.run(task([], undefined, release)))).catch(() => {});
      }
      await pool.destroy();
    },
  };
}

/** Main thread, one q-block at a time: for backends whose kernels cannot live in worker threads (gl). */
async function mainThreadRunner(thePlan: Plan, selection: Selection, inputs: TaskInputs, outputs: BlockOutputs): Promise<Runner> {
  const kernel = await selection.backend.create(selection.options);
  const { source, close } = ownTaskSource(thePlan.spec, inputs);
  return {
    warm: () => warmKernel(kernel, thePlan.spec, thePlan, 3, outputs),
    async run(order, done, signal) {
      for (const index of order) {
        signal.throwIfAborted();
        done(index, await computeQBlock(kernel, thePlan.spec, thePlan.block(index), source, undefined, undefined, outputs));
        await new Promise(setImmediate); // let progress, signals and I/O through between blocks
      }
    },
    close: async () => {
      close();
      await kernel.dispose?.();
    },
  };
}

/** Whether a named backend's kernels must run on the main thread (asked of the backend; `auto` decides later). */
function namedOnMain(backend: string | undefined): boolean {
  if (backend === undefined || backend === 'auto') return false;
  try {
    return getBackend(parseBackendName(backend).name).threading === 'main';
  } catch {
    return false; // an unknown name: selectBackend reports it
  }
}

/**
 * The embedded engine: validates, plans, runs q-blocks on a piscina pool (or the main thread for
 * backends that need it), writes each q-block's merged rows as they complete, and commits O and
 * LSE atomically at the end. On any failure or abort, every running task is stopped and no
 * output file is left behind.
 */
export function runLocal(request: JobRequest, options: LocalRunOptions = {}): Promise<JobResult> {
  return runPlanned(request, options);
}

/** What an LSE-only pass asks: `run`'s request without V and outputs. */
export type LseRequest = Omit<JobRequest, 'v' | 'out' | 'lse' | 'outDtype'>;

/**
 * The LSE-only pass (inspect's first pass, docs/math.md "Attention patterns"): `run`'s plan,
 * tiles, backends and merge order on the kernels' V-free tiles (tileLse), no V read and no O.
 * Returns lse [B·H·Sq] float32 (-Infinity for rows that see no key) — for the same plan and
 * backend the bits of a full run's LSE wherever the kernel's V-free tile gives its tiles' LSE bits
 * (ort, js and the default; tested), and never dependent on the thread count.
 */
export async function runLocalLse(
  request: LseRequest,
  options: LocalRunOptions = {},
): Promise<{ lse: Float32Array; backend: string; computeMs: number }> {
  let output: LseOutput | undefined;
  const result = await runPlanned({ ...request, v: request.k, out: '' }, options, (spec) => {
    output = new LseOutput(spec);
    return output;
  });
  return { lse: output!.lse, backend: result.backend, computeMs: result.computeMs };
}

/** runLocal, or with `lseOutput` the LSE-only pass into the LseOutput it makes (nothing written to `out`). */
async function runPlanned(
  request: JobRequest,
  options: LocalRunOptions,
  lseOutput?: (spec: AttentionSpec) => LseOutput,
): Promise<JobResult> {
  const started = performance.now();
  const requestedThreads = options.threads ?? availableParallelism();
  if (!Number.isInteger(requestedThreads) || requestedThreads < 1)
    throw new InputError('--threads', `expected an integer ≥ 1, got ${requestedThreads}`);
  // Pool threads start loading their code now, in parallel with validation and the backend's
  // probe (~0.2–0.3 s less per run); a backend that runs on the main thread drops them unused.
  const earlyThreads = Math.min(requestedThreads, LOCAL_THREADS_MAX, availableParallelism());
  let pool: Piscina | undefined = namedOnMain(request.backend) ? undefined : startPool(earlyThreads);
  let inputs: JobInputs;
  try {
    inputs = openInputs(request);
  } catch (error) {
    await pool?.destroy();
    throw error;
  }
  try {
    const { spec } = inputs;
    const selection = await selectBackend(linearBackend(spec, request.backend) ?? request.backend ?? 'auto', { threads: 1 });
    const blocks = resolveBlocks(request, spec.linear ? LINEAR_BLOCKS : strideBlocks(spec, selection.backend.defaultBlocks));
    const thePlan = plannedWithinLimits(spec, blocks, planLimits(options.limits), 'local');
    if (lseOutput && spec.linear) throw new InputError('--linear', 'has no LSE: inspect needs softmax attention');
    const output = lseOutput ? lseOutput(spec) : new JobOutput(spec, inputs.q.shape, request.out, request.lse, request.outDtype);
    const onMain = selection.backend.threading === 'main';
    const threads = onMain ? 1 : Math.min(requestedThreads, LOCAL_THREADS_MAX, Math.max(1, thePlan.qBlockCount));
    const abort = new AbortController();
    const forward = () => abort.abort(new Error('job aborted', { cause: options.signal?.reason }));
    options.signal?.addEventListener('abort', forward, { once: true });
    if (options.signal?.aborted) forward(); // aborted while the inputs were being validated
    let runner: Runner | undefined;
    try {
      const source = taskInputs(inputs, lseOutput !== undefined);
      // 'o' when no LSE is written: sole tiles may skip it (block-outputs.ts).
      const outputs: BlockOutputs = lseOutput ? 'lse' : request.lse ? 'o+lse' : 'o';
      if (onMain) {
        await pool?.destroy();
        pool = undefined;
        runner = await mainThreadRunner(thePlan, selection, source, outputs);
      } else {
        if (pool && threads > earlyThreads) {
          await pool.destroy(); // more threads asked than cores, and the work can use them
          pool = undefined;
        }
        pool ??= startPool(threads);
        runner = poolRunner(pool, thePlan, selection, source, threads, (reason) => abort.abort(reason), outputs);
        pool = undefined; // the runner owns it now
      }
      await runner.warm();
      const computeStart = performance.now();
      const progress: Progress = { doneTiles: 0, totalTiles: thePlan.tileCount, doneFlops: 0, totalFlops: thePlan.flops };
      options.onProgress?.({ ...progress });
      await runner.run(
        heaviestFirst(thePlan),
        (index, result) => {
          output.write(thePlan.locate(index), result);
          progress.doneTiles += thePlan.tilesIn(index);
          progress.doneFlops += thePlan.flopsIn(index);
          options.onProgress?.({ ...progress });
        },
        abort.signal,
      );
      const computeMs = performance.now() - computeStart;
      output.commit();
      return jobResult(request, thePlan, {
        backend: selection.name,
        device: selection.device,
        engine: 'local',
        threads,
        wallMs: performance.now() - started,
        computeMs,
      });
    } catch (error) {
      abort.abort(error);
      output.abort();
      throw error;
    } finally {
      options.signal?.removeEventListener('abort', forward);
      await runner?.close();
    }
  } finally {
    await pool?.destroy(); // not handed to a runner: the job failed before it ran
    inputs.close();
  }
}
