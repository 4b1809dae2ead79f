import type { MaskRule } from '@longattn/attention';
import { getBackend, type KernelOptions, type TileKernel } from '@longattn/kernels';
import { move } from 'piscina';

/** One tile of a task: its place and its q [rows, D], k and v [keys, D] blocks (shared memory, not copied). */
export interface TaskTile {
  rows: number;
  keys: number;
  qStart: number;
  kStart: number;
  full: boolean;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

/** What a worker sends a kernel thread: all tiles of one tile job, computed in order. */
export interface TileTask {
  backend: string;
  kernelOptions: KernelOptions;
  D: number;
  scale: number;
  rule: MaskRule;
  tiles: TaskTile[];
}

const kernels = new Map<string, Promise<TileKernel>>();

function kernelFor(task: TileTask): Promise<TileKernel> {
  const key = `${task.backend}|${JSON.stringify(task.kernelOptions)}`;
  let kernel = kernels.get(key);
  if (!kernel) {
    kernel = getBackend(task.backend).create(task.kernelOptions);
    kernels.set(key, kernel);
  }
  return kernel;
}

/** Floats of tile t's partial in a task's reply: [o (rows·D), lse (rows)]. */
export function partialLength(tile: Pick<TaskTile, 'rows'>, D: number): number {
  return tile.rows * D + tile.rows;
}

/**
 * Runs a task's tiles off the worker's event loop, one after another (one message each way per
 * job, not per tile); replies with every tile's [o, lse] back to back in one float32 buffer,
 * transferred.
 */
export default async function runTiles(task: TileTask): Promise<unknown> {
  const kernel = await kernelFor(task);
  const { D, scale, rule } = task;
  const packed = new Float32Array(task.tiles.reduce((n, t) => n + partialLength(t, D), 0));
  let at = 0;
  for (const t of task.tiles) {
    const partial = await kernel.run({ rows: t.rows, keys: t.keys, D, scale, qStart: t.qStart, kStart: t.kStart, rule, full: t.full, q: t.q, k: t.k, v: t.v });
    packed.set(partial.o, at);
    packed.set(partial.lse, at + t.rows * D);
    at += partialLength(t, D);
  }
  return move(packed);
}
