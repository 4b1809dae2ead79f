import { availableParallelism } from 'node:os';
import { InputError, plan, type AttentionSpec } from '@longattn/attention';
import { selectBackend } from '@longattn/kernels';
import type { TensorReader } from '@longattn/tensor';
import { Piscina } from 'piscina';
import { openInputs } from '../inputs.ts';
import type { JobRequest, JobResult, Progress } from '../job.ts';
import { JobOutput } from '../output.ts';
import { resolveBlocks } from '../blocks.ts';
import { unpackResult, type LocalTask } from './task.ts';

export interface LocalRunOptions {
  /** Pool threads; default = cores. Output bits never depend on it. */
  threads?: number;
  onProgress?: (progress: Progress) => void;
  /** Aborting stops the pool's running tasks and removes partial outputs. */
  signal?: AbortSignal;
}

const workerFile = new URL('./tile-worker.mjs', import.meta.url).href;

/** Copies a whole input tensor into shared memory as float32 so every pool thread reads it in place. */
function loadShared(reader: TensorReader): Float32Array {
  const shared = new Float32Array(new SharedArrayBuffer(reader.length * 4));
  return reader.readRuns(0, 1, reader.length, reader.length, shared);
}

/**
 * The embedded engine: validates, plans, runs q-blocks on a piscina pool, writes each q-block's
 * merged rows as they complete, and commits O and LSE atomically at the end.
 */
export async function runLocal(request: JobRequest, options: LocalRunOptions = {}): Promise<JobResult> {
  const started = performance.now();
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new InputError('--threads', `expected an integer ≥ 1, got ${threads}`);
  const inputs = openInputs(request);
  try {
    const { spec } = inputs;
    const selection = await selectBackend(request.backend ?? 'auto', { threads: 1 });
    const blocks = resolveBlocks(request, selection.backend.defaultBlocks);
    const thePlan = plan(spec, blocks);
    const output = new JobOutput(spec, inputs.q.shape, request.out, request.lse);
    const pool = new Piscina({ filename: workerFile, minThreads: threads, maxThreads: threads, idleTimeout: 1000 });
    const device = selection.device;
    try {
      const q = loadShared(inputs.q);
      const k = loadShared(inputs.k);
      const v = loadShared(inputs.v);
      const computeStart = performance.now();
      const progress: Progress = { doneTiles: 0, totalTiles: thePlan.tileCount, doneFlops: 0, totalFlops: thePlan.flops };
      options.onProgress?.({ ...progress });
      // Heaviest q-blocks first so the pool drains evenly; the output never depends on the order.
      const order = [...thePlan.qBlocks].sort((a, b) => b.tiles.length - a.tiles.length);
      const perTileFlops = (spec: AttentionSpec, rows: number, keys: number) => 4 * rows * keys * spec.D;
      await Promise.all(
        order.map(async (block) => {
          const task: LocalTask = { spec, block, backend: selection.name, kernelOptions: selection.options, q, k, v };
          const packed = (await pool.run(task, options.signal ? { signal: options.signal } : {})) as Float32Array;
          output.write(block, { ...unpackResult(packed, block.rows, spec.D), rows: block.rows, D: spec.D, kStart: 0 });
          progress.doneTiles += block.tiles.length;
          for (const t of block.tiles) progress.doneFlops += perTileFlops(spec, t.rows, t.keys);
          options.onProgress?.({ ...progress, doneFlops: Math.min(progress.doneFlops, progress.totalFlops) });
        }),
      );
      const computeMs = performance.now() - computeStart;
      output.commit();
      const wallMs = performance.now() - started;
      const gridTiles = thePlan.qBlocks.length * Math.ceil(spec.Sk / blocks.blockK);
      return {
        out: request.out,
        ...(request.lse ? { lse: request.lse } : {}),
        backend: selection.name,
        device,
        engine: 'local',
        threads,
        blockQ: blocks.blockQ,
        blockK: blocks.blockK,
        tiles: thePlan.tileCount,
        skippedTiles: gridTiles - thePlan.tileCount,
        flops: thePlan.flops,
        wallMs,
        computeMs,
        gflops: thePlan.flops / 1e6 / computeMs,
        shape: { B: spec.B, H: spec.H, Hk: spec.Hk, Sq: spec.Sq, Sk: spec.Sk, D: spec.D },
      };
    } catch (error) {
      output.abort();
      throw error;
    } finally {
      await pool.destroy();
    }
  } finally {
    inputs.close();
  }
}
