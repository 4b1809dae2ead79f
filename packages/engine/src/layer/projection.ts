import { createLinear, type Linear } from '@longattn/kernels';
import type { FileTensor } from '../local/task.ts';
import { fileReader } from '../local/task-source.ts';
import { applyRope } from './rope.ts';

/** One projection of a layer: y = x·wᵀ + b, then RoPE over `heads` heads of D when given. */
export interface Projection {
  w: FileTensor;
  b?: FileTensor;
  rope?: { heads: number; D: number; theta: number };
}

/** This thread's projection GEMMs and weights (a few MB each), kept across tasks of one job. */
const linears = new Map<string, Promise<Linear>>();
const weights = new Map<string, Float32Array>();

export function threadLinear(name: 'ort' | 'js'): Promise<Linear> {
  let linear = linears.get(name);
  if (!linear) {
    linear = createLinear(name);
    linears.set(name, linear);
  }
  return linear;
}

function weight(t: FileTensor): Float32Array {
  const key = JSON.stringify(t);
  let w = weights.get(key);
  if (!w) {
    if (weights.size >= 16) weights.clear(); // another job's weights
    w = fileReader(t).readAll();
    weights.set(key, w);
  }
  return w;
}

/**
 * Rows [firstRow, firstRow + rows) of a row-major [*, width] tensor in a file (X, or O as
 * [B·S, H·D]) as float32 [rows, width].
 */
export function readRows(source: FileTensor, width: number, firstRow: number, rows: number): Float32Array {
  return fileReader(source).readRuns(firstRow * width, 1, rows * width, rows * width);
}

/**
 * y = x·wᵀ + b [rows, out] for the given rows of x [rows, in], then RoPE with positions
 * `position … position + rows − 1`.
 */
export async function project(linear: 'ort' | 'js', x: Float32Array, rows: number, p: Projection, position: number): Promise<Float32Array> {
  return projectWith(linear, x, rows, weight(p.w), p.b ? weight(p.b) : undefined, p.rope, position);
}

/**
 * `project` with the weights in memory (w [out, in], b [out]): the one place a layer's rows are
 * projected, on either engine (the queue's workers read the weights from blobs), so the bits
 * depend only on the rows given.
 */
export async function projectWith(
  linear: 'ort' | 'js',
  x: Float32Array,
  rows: number,
  w: Float32Array,
  b: Float32Array | undefined,
  rope: Projection['rope'],
  position: number,
): Promise<Float32Array> {
  const outDim = w.length / (x.length / rows);
  const y = await (await threadLinear(linear)).run(x, rows, w, outDim, b);
  if (rope) applyRope(y, rows, rope.heads, rope.D, position, rope.theta);
  return y;
}

/** Splits rows [count, heads·D] (bshd order) into each head's [count, D] run, handed to `write` head by head. */
export function splitHeads(
  rows: Float32Array,
  heads: number,
  D: number,
  count: number,
  write: (h: number, head: Float32Array) => void,
): void {
  for (let h = 0; h < heads; h++) {
    const head = new Float32Array(count * D);
    for (let r = 0; r < count; r++) head.set(rows.subarray((r * heads + h) * D, (r * heads + h + 1) * D), r * D);
    write(h, head);
  }
}

/** Rows [count, heads·D] (bshd order) from each head's [count, D] run (`read(h)`): o_proj's input. */
export function joinHeads(heads: number, D: number, count: number, read: (h: number) => Float32Array): Float32Array {
  const out = new Float32Array(count * heads * D);
  for (let h = 0; h < heads; h++) {
    const run = read(h);
    for (let r = 0; r < count; r++) out.set(run.subarray(r * D, (r + 1) * D), (r * heads + h) * D);
  }
  return out;
}
