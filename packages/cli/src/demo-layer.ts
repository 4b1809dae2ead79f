import { join } from 'node:path';
import { checkOutputPaths, runLayer, type LayerResult } from '@longattn/engine';
import { createTensorWriter, gaussian, mulberry32, openTensor, readTensor, writeSafetensors } from '@longattn/tensor';
import { progressBar } from './progress-bar.ts';

/**
 * `longattn demo --layer`: a Mistral-shaped attention layer (d_model 1024, 16 heads on 4 kv heads,
 * D = 64, sliding window (4095, 0) plus 4 attention sinks, RoPE 10000, no biases) with random
 * bf16 weights and a random bf16 document X [n, 1024], run by `runLayer`; sampled rows of Y are
 * then recomputed in float64 (and naively in float32 for the bound) from X's and the weights' bits.
 */
export const MISTRAL = { dModel: 1024, H: 16, Hk: 4, D: 64, window: 4095, sinks: 4, theta: 10000 } as const;
const PREFIX = 'model.layers.0.self_attn.';
/** X is written this many rows at a time (8 MB of float32 in memory, whatever n). */
const WRITE_ROWS = 2048;

export interface LayerDemoResult {
  result: LayerResult;
  verified: { rows: number[]; maxAbsErr: number; bound: number; exact: boolean };
  files: { x: string; weights: string; out: string };
}

export async function layerDemo(
  n: number,
  dir: string,
  options: { backend: string; threads?: number; blockQ?: number; blockK?: number; progress: boolean },
  signal: AbortSignal,
): Promise<LayerDemoResult> {
  const { dModel, H, Hk, D } = MISTRAL;
  const files = { x: join(dir, 'x.safetensors'), weights: join(dir, 'weights.safetensors'), out: join(dir, 'y.npy') };
  checkOutputPaths(
    [{ argument: '--dir', path: files.out }],
    [
      { argument: '--dir', ref: files.x },
      { argument: '--dir', ref: files.weights },
    ],
  );
  const normal = gaussian(mulberry32(11));
  const matrix = (rows: number, cols: number) => {
    const a = new Float32Array(rows * cols);
    for (let i = 0; i < a.length; i++) a[i] = normal() / Math.sqrt(cols);
    return { shape: [rows, cols], data: a, dtype: 'bf16' as const };
  };
  writeSafetensors(files.weights, {
    [`${PREFIX}q_proj.weight`]: matrix(H * D, dModel),
    [`${PREFIX}k_proj.weight`]: matrix(Hk * D, dModel),
    [`${PREFIX}v_proj.weight`]: matrix(Hk * D, dModel),
    [`${PREFIX}o_proj.weight`]: matrix(dModel, H * D),
  });
  const x = createTensorWriter(files.x, [n, dModel], { name: 'hidden', dtype: 'bf16', argument: '--dir' });
  try {
    const block = new Float32Array(WRITE_ROWS * dModel);
    for (let r0 = 0; r0 < n; r0 += WRITE_ROWS) {
      signal.throwIfAborted();
      const rows = Math.min(WRITE_ROWS, n - r0);
      for (let i = 0; i < rows * dModel; i++) block[i] = normal();
      x.writeRuns(r0 * dModel, block.subarray(0, rows * dModel), rows * dModel, rows * dModel);
    }
    x.commit();
  } catch (error) {
    x.abort();
    throw error;
  }
  const bar = progressBar(options.progress, 'layer');
  let result: LayerResult;
  try {
    result = await runLayer(
      {
        x: `${files.x}#hidden`,
        weights: files.weights,
        prefix: PREFIX,
        heads: H,
        kvHeads: Hk,
        ropeTheta: MISTRAL.theta,
        out: files.out,
        options: { causal: true, window: { left: MISTRAL.window, right: 0 }, pattern: { sinks: MISTRAL.sinks } },
        backend: options.backend,
        ...(options.blockQ ? { blockQ: options.blockQ } : {}),
        ...(options.blockK ? { blockK: options.blockK } : {}),
      },
      { ...(options.threads ? { threads: options.threads } : {}), onProgress: bar.update, signal },
    );
  } finally {
    bar.stop();
  }
  const rows = [...new Set([0, 1, Math.min(n - 1, 300), n - 1])];
  return { result, verified: verifyRows(files, rows), files };
}

/**
 * Y's sampled rows against the layer recomputed for just those rows from the files' bits: K and V
 * only for the keys the rows see (sinks and window), in float64 and naively in float32, and the
 * rule max|Y − Y64| ≤ 4·max|Y32 − Y64| + 1e-5·max|Y64| (docs/contracts.md, "Document layers").
 */
function verifyRows(files: { x: string; weights: string; out: string }, rows: number[]) {
  const { dModel, H, Hk, D, window, sinks, theta } = MISTRAL;
  const w = (name: string) => readTensor(`${files.weights}#${PREFIX}${name}.weight`).data;
  const [wq, wk, wv, wo] = [w('q_proj'), w('k_proj'), w('v_proj'), w('o_proj')];
  const xReader = openTensor(`${files.x}#hidden`);
  const yReader = openTensor(files.out);
  try {
    const xRow = (i: number) => xReader.readRuns(i * dModel, 1, dModel, dModel);
    let worst = 0;
    let naiveWorst = 0;
    let scale = 0;
    for (const i of rows) {
      const keys: number[] = [];
      for (let j = 0; j <= i; j++) if (j < sinks || j >= i - window) keys.push(j);
      const ours = yReader.readRuns(i * dModel, 1, dModel, dModel);
      const [y64, y32] = [(v: number) => v, Math.fround].map((round) => {
        const linear = (x: ArrayLike<number>, m: Float32Array, out: number) => {
          const y = new Float64Array(out);
          for (let o = 0; o < out; o++) {
            let s = 0;
            for (let c = 0; c < x.length; c++) s = round(s + round(x[c]! * m[o * x.length + c]!));
            y[o] = s;
          }
          return y;
        };
        const rope = (y: Float64Array, heads: number, p: number) => {
          for (let h = 0; h < heads; h++) {
            for (let d = 0; d < D / 2; d++) {
              const a = round(p * round(1 / theta ** ((2 * d) / D)));
              const [c, s] = [round(Math.cos(a)), round(Math.sin(a))];
              const [x1, x2] = [y[h * D + d]!, y[h * D + d + D / 2]!];
              y[h * D + d] = round(round(x1 * c) - round(x2 * s));
              y[h * D + d + D / 2] = round(round(x2 * c) + round(x1 * s));
            }
          }
          return y;
        };
        const q = rope(linear(xRow(i), wq, H * D), H, i);
        const kv = keys.map((j) => {
          const xj = xRow(j);
          return { k: rope(linear(xj, wk, Hk * D), Hk, j), v: linear(xj, wv, Hk * D) };
        });
        const o = new Float64Array(H * D);
        for (let h = 0; h < H; h++) {
          const g = Math.floor(h / (H / Hk));
          const scores = kv.map(({ k }) => {
            let s = 0;
            for (let d = 0; d < D; d++) s = round(s + round(q[h * D + d]! * k[g * D + d]!));
            return round(s * round(1 / Math.sqrt(D)));
          });
          const m = Math.max(...scores);
          const p = scores.map((s) => round(Math.exp(s - m)));
          const z = p.reduce((a, b) => round(a + b), 0);
          for (let d = 0; d < D; d++) {
            let acc = 0;
            kv.forEach(({ v }, t) => {
              acc = round(acc + round(p[t]! * v[g * D + d]!));
            });
            o[h * D + d] = round(acc / z);
          }
        }
        return linear(o, wo, dModel);
      }) as [Float64Array, Float64Array];
      for (let c = 0; c < dModel; c++) {
        worst = Math.max(worst, Math.abs(ours[c]! - y64[c]!));
        naiveWorst = Math.max(naiveWorst, Math.abs(y32[c]! - y64[c]!));
        scale = Math.max(scale, Math.abs(y64[c]!));
      }
    }
    const bound = 4 * naiveWorst + 1e-5 * scale;
    return { rows, maxAbsErr: worst, bound, exact: worst <= bound };
  } finally {
    xReader.close();
    yReader.close();
  }
}
