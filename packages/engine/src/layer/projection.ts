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
  const w = weight(p.w);
  const outDim = p.w.layout.shape[0]!;
  const y = await (await threadLinear(linear)).run(x, rows, w, outDim, p.b ? weight(p.b) : undefined);
  if (p.rope) applyRope(y, rows, p.rope.heads, p.rope.D, position, p.rope.theta);
  return y;
}
