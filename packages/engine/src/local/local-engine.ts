import { availableParallelism } from 'node:os';
import { InputError, plan, type Partial, type Plan, type QBlockPlan } from '@longattn/attention';
import { selectBackend, type Selection } from '@longattn/kernels';
import type { TensorReader } from '@longattn/tensor';
import { Piscina } from 'piscina';
import { resolveBlocks } from '../blocks.ts';
import { computeQBlock, warmKernel } from '../compute-block.ts';
import { openInputs, type JobInputs } from '../inputs.ts';
import type { JobRequest, JobResult, Progress } from '../job.ts';
import { JobOutput } from '../output.ts';
import { taskSource } from './task-source.ts';
import { unpackResults, type LocalTask, type TaskInputs } from './task.ts';

export interface LocalRunOptions {
  /** Pool threads; default = cores. Output bits never depend on it. */
  threads?: number;
  onProgress?: (progress: Progress) => void;
  /** Aborting stops the running tasks and removes partial outputs. */
  signal?: AbortSignal;
}

const workerFile = new URL('./tile-worker.mjs', import.meta.url).href;

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
 */
function taskInputs(inputs: JobInputs): TaskInputs {
  const { q, k, v } = inputs;
  const file = (t: TensorReader) => ({ path: t.path, argument: t.argument, layout: t.layout });
  if ([q, k, v].every((t) => t.dtype === 'f32')) return { kind: 'files', q: file(q), k: file(k), v: file(v) };
  return { kind: 'shared', q: loadShared(q), k: loadShared(k), v: loadShared(v) };
}

/** Runs `compute` on every q-block, heaviest first, calling `done` as each completes; stops at the first failure. */
type BlockRunner = (blocks: QBlockPlan[], done: (block: QBlockPlan, partial: Partial) => void, signal: AbortSignal) => Promise<void>;

interface Runner {
  /** Starts threads and creates their kernels, so the compute phase measures compute only. */
  warm(): Promise<void>;
  run: BlockRunner;
  close(): Promise<void>;
}

/** A pool of `threads` threads, started now: they load their code while the caller does other work. */
function startPool(threads: number): Piscina {
  return new Piscina({ filename: workerFile, minThreads: threads, maxThreads: threads, idleTimeout: 1000 });
}

/** Piscina pool: q-blocks run in parallel threads that share the inputs' memory. */
function poolRunner(
  pool: Piscina,
  thePlan: Plan,
  selection: Selection,
  inputs: TaskInputs,
  threads: number,
  stop: (reason: unknown) => void,
): Runner {
  const { spec } = thePlan;
  return {
    async warm() {
      const warm = { blockQ: thePlan.blockQ, blockK: thePlan.blockK, barrier: new SharedArrayBuffer(4), threads };
      const task: LocalTask = { spec, blocks: [], backend: selection.name, kernelOptions: selection.options, inputs, warm };
      await Promise.all(Array.from({ length: threads }, () => pool.run(task)));
    },
    // Tasks carry several q-blocks (each round trip through the pool costs ~1 ms here), about 16
    // tasks per thread so the pool still drains evenly. One lane per thread pulls the next task:
    // at most `threads` tasks are in flight, so an abort or a failure stops after the running ones
    // finish (no task is torn down mid-way — piscina then reports "Unexpected message from
    // Worker" for the result already on its way).
    async run(blocks, done, signal) {
      const size = Math.max(1, Math.floor(blocks.length / (threads * 16)));
      const groups = Array.from({ length: Math.ceil(blocks.length / size) }, (_, i) => blocks.slice(i * size, (i + 1) * size));
      let next = 0;
      const lanes = Array.from({ length: threads }, async () => {
        while (next < groups.length && !signal.aborted) {
          const group = groups[next++]!;
          const task: LocalTask = { spec, blocks: group, backend: selection.name, kernelOptions: selection.options, inputs };
          const packed = (await pool.run(task)) as Float32Array;
          unpackResults(packed, group, spec.D).forEach((r, i) => {
            done(group[i]!, { ...r, rows: group[i]!.rows, D: spec.D, kStart: 0 });
          });
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
    close: () => pool.destroy(),
  };
}

/** Main thread, one q-block at a time: for backends whose kernels cannot live in worker threads (gl). */
async function mainThreadRunner(thePlan: Plan, selection: Selection, inputs: TaskInputs): Promise<Runner> {
  const kernel = await selection.backend.create(selection.options);
  const source = taskSource(thePlan.spec, inputs);
  return {
    warm: () => warmKernel(kernel, thePlan.spec, thePlan),
    async run(blocks, done, signal) {
      for (const block of blocks) {
        signal.throwIfAborted();
        done(block, await computeQBlock(kernel, thePlan.spec, block, source));
        await new Promise(setImmediate); // let progress, signals and I/O through between blocks
      }
    },
    close: async () => kernel.dispose?.(),
  };
}

/**
 * The embedded engine: validates, plans, runs q-blocks on a piscina pool (or the main thread for
 * backends that need it), writes each q-block's merged rows as they complete, and commits O and
 * LSE atomically at the end. On any failure or abort, every running task is stopped and no
 * output file is left behind.
 */
export async function runLocal(request: JobRequest, options: LocalRunOptions = {}): Promise<JobResult> {
  const started = performance.now();
  const requestedThreads = options.threads ?? availableParallelism();
  if (!Number.isInteger(requestedThreads) || requestedThreads < 1)
    throw new InputError('--threads', `expected an integer ≥ 1, got ${requestedThreads}`);
  // Pool threads start loading their code now, in parallel with validation and the backend's
  // probe (~0.2–0.3 s less per run); a backend that runs on the main thread drops them unused.
  const earlyThreads = Math.min(requestedThreads, LOCAL_THREADS_MAX, availableParallelism());
  let pool: Piscina | undefined = request.backend?.startsWith('gpujs') ? undefined : startPool(earlyThreads);
  let inputs: JobInputs;
  try {
    inputs = openInputs(request);
  } catch (error) {
    await pool?.destroy();
    throw error;
  }
  try {
    const { spec } = inputs;
    const selection = await selectBackend(request.backend ?? 'auto', { threads: 1 });
    const blocks = resolveBlocks(request, selection.backend.defaultBlocks);
    const thePlan = plan(spec, blocks);
    const output = new JobOutput(spec, inputs.q.shape, request.out, request.lse);
    const onMain = selection.backend.threading === 'main';
    const threads = onMain ? 1 : Math.min(requestedThreads, LOCAL_THREADS_MAX, Math.max(1, thePlan.qBlocks.length));
    const abort = new AbortController();
    const forward = () => abort.abort(new Error('job aborted', { cause: options.signal?.reason }));
    options.signal?.addEventListener('abort', forward, { once: true });
    if (options.signal?.aborted) forward(); // aborted while the inputs were being validated
    let runner: Runner | undefined;
    try {
      const source = taskInputs(inputs);
      if (onMain) {
        await pool?.destroy();
        pool = undefined;
        runner = await mainThreadRunner(thePlan, selection, source);
      } else {
        if (pool && threads > earlyThreads) {
          await pool.destroy(); // more threads asked than cores, and the work can use them
          pool = undefined;
        }
        pool ??= startPool(threads);
        runner = poolRunner(pool, thePlan, selection, source, threads, (reason) => abort.abort(reason));
        pool = undefined; // the runner owns it now
      }
      await runner.warm();
      const computeStart = performance.now();
      const progress: Progress = { doneTiles: 0, totalTiles: thePlan.tileCount, doneFlops: 0, totalFlops: thePlan.flops };
      options.onProgress?.({ ...progress });
      // Heaviest q-blocks first so the pool drains evenly; the output never depends on the order.
      const order = [...thePlan.qBlocks].sort((a, b) => b.tiles.length - a.tiles.length);
      const blockFlops = new Map(thePlan.qBlocks.map((qb) => [qb, qb.tiles.reduce((sum, t) => sum + t.flops, 0)]));
      await runner.run(
        order,
        (block, partial) => {
          output.write(block, partial);
          progress.doneTiles += block.tiles.length;
          progress.doneFlops += blockFlops.get(block)!;
          options.onProgress?.({ ...progress });
        },
        abort.signal,
      );
      const computeMs = performance.now() - computeStart;
      output.commit();
      const gridTiles = thePlan.qBlocks.length * Math.ceil(spec.Sk / blocks.blockK);
      return {
        out: request.out,
        ...(request.lse ? { lse: request.lse } : {}),
        backend: selection.name,
        device: selection.device,
        engine: 'local',
        threads,
        blockQ: blocks.blockQ,
        blockK: blocks.blockK,
        tiles: thePlan.tileCount,
        skippedTiles: gridTiles - thePlan.tileCount,
        flops: thePlan.flops,
        wallMs: performance.now() - started,
        computeMs,
        gflops: thePlan.flops / 1e6 / computeMs,
        shape: { B: spec.B, H: spec.H, Hk: spec.Hk, Sq: spec.Sq, Sk: spec.Sk, D: spec.D },
      };
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
