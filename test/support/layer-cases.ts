import { join } from 'node:path';
import type { LayerRequest } from '@longattn/engine';
import { writeSafetensors, writeTensor } from '@longattn/tensor';
import type { Layer64Spec, LayerWeights64 } from './layer64.ts';
import { randomTensor } from './random.ts';

/** A layer test case (test/layer, test/queue/layer): shapes for the float64 layer, weights present, options. */
export interface LayerCase {
  name: string;
  spec: Layer64Spec;
  biases: boolean;
  oProj: boolean;
  cross?: boolean;
  /** X as rank 2 ([S, d]) when B = 1 and this is set. */
  rank2?: boolean;
  xDtype?: 'f32' | 'bf16';
  options: LayerRequest['options'];
  blocks?: { blockQ: number; blockK: number };
}

/** Writes the case's X (and Xkv) and weights; returns their paths and the float32 values written. */
export function prepare(c: LayerCase, dir: string) {
  const { B, S, Skv, dModel, dKv, H, Hk, D } = c.spec;
  const bf16 = (a: Float32Array) => {
    if (c.xDtype !== 'bf16') return a;
    const u = new Uint32Array(a.buffer.slice(0));
    for (let i = 0; i < u.length; i++) u[i] = u[i]! & 0xffff0000; // exactly representable in bf16, so the file holds these values
    return new Float32Array(u.buffer);
  };
  const x = bf16(randomTensor(B * S * dModel, 1));
  const xKv = c.cross ? bf16(randomTensor(B * Skv * dKv, 2)) : x;
  const w: LayerWeights64 = {
    wq: randomTensor(H * D * dModel, 3, 1 / Math.sqrt(dModel)),
    wk: randomTensor(Hk * D * dKv, 4, 1 / Math.sqrt(dKv)),
    wv: randomTensor(Hk * D * dKv, 5, 1 / Math.sqrt(dKv)),
    ...(c.oProj ? { wo: randomTensor(dModel * H * D, 6, 1 / Math.sqrt(H * D)) } : {}),
    ...(c.biases ? { bq: randomTensor(H * D, 7, 0.1), bk: randomTensor(Hk * D, 8, 0.1), bv: randomTensor(Hk * D, 9, 0.1) } : {}),
    ...(c.biases && c.oProj ? { bo: randomTensor(dModel, 10, 0.1) } : {}),
  };
  const prefix = 'model.layers.3.self_attn.';
  const tensors: Parameters<typeof writeSafetensors>[1] = {
    [`${prefix}q_proj.weight`]: { shape: [H * D, dModel], data: w.wq },
    [`${prefix}k_proj.weight`]: { shape: [Hk * D, dKv], data: w.wk },
    [`${prefix}v_proj.weight`]: { shape: [Hk * D, dKv], data: w.wv },
    'model.layers.2.self_attn.q_proj.weight': { shape: [1, 1], data: new Float32Array(1) }, // another layer, never read
  };
  if (w.wo) tensors[`${prefix}o_proj.weight`] = { shape: [dModel, H * D], data: w.wo };
  for (const [name, t] of [
    ['q_proj.bias', w.bq],
    ['k_proj.bias', w.bk],
    ['v_proj.bias', w.bv],
    ['o_proj.bias', w.bo],
  ] as const) {
    if (t) tensors[`${prefix}${name}`] = { shape: [t.length], data: t };
  }
  const weights = join(dir, 'w.safetensors');
  writeSafetensors(weights, tensors);
  const xShape = c.rank2 ? [S, dModel] : [B, S, dModel];
  const xPath = join(dir, 'x.safetensors');
  writeSafetensors(xPath, { hidden: { shape: xShape, data: x, ...(c.xDtype === 'bf16' ? { dtype: 'bf16' as const } : {}) } });
  let xKvPath: string | undefined;
  if (c.cross) {
    xKvPath = join(dir, 'xkv.npy');
    writeTensor(xKvPath, [B, Skv, dKv], xKv);
  }
  const request = (out: string, extra: Partial<LayerRequest> = {}): LayerRequest => ({
    x: `${xPath}#hidden`,
    ...(xKvPath ? { xKv: xKvPath } : {}),
    weights,
    prefix,
    heads: H,
    kvHeads: Hk,
    ...(c.spec.theta !== undefined ? { ropeTheta: c.spec.theta } : { rope: false }),
    out: join(dir, out),
    options: c.options,
    ...(c.blocks ?? {}),
    ...extra,
  });
  return { x, xKv, w, request };
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
