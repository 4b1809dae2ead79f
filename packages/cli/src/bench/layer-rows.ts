import { join } from 'node:path';
import { uniformF32, writeSafetensors, writeTensor } from '@longattn/tensor';
import { measureRun, type RunMeasurement } from './measure.ts';
import { median } from './peers/peer-common.ts';
import type { BenchRow } from './rows.ts';

/**
 * The layer target (issue 10): `longattn layer` at d_model 1024, H = 16, Hk = 4, D = 64, causal,
 * against `longattn run` on Q, K, V of the same shapes — how much the projections (Q, K, V and
 * o_proj, 2·n·1024·2560 FLOPs) add to the attention alone. Runs alternate (attention, layer, …)
 * so both see the same load; `ms` is each one's median compute phase, GFLOP/s the attention's
 * unmasked work for both (so the layer's is lower by exactly the ratio).
 */
export const LAYER_SHAPE = { dModel: 1024, H: 16, Hk: 4, D: 64 } as const;

export async function measureLayerRows(
  n: number,
  backend: string,
  threads: number,
  reps: number,
  dir: string,
): Promise<{ rows: BenchRow[]; addedPercent: number }> {
  const { dModel, H, Hk, D } = LAYER_SHAPE;
  const files = {
    q: join(dir, `layer-q-${n}.npy`),
    k: join(dir, `layer-k-${n}.npy`),
    v: join(dir, `layer-v-${n}.npy`),
    x: join(dir, `layer-x-${n}.npy`),
    w: join(dir, `layer-w-${n}.safetensors`),
    out: join(dir, 'layer-out.npy'),
  };
  writeTensor(files.q, [H, n, D], uniformF32(H * n * D, 1));
  writeTensor(files.k, [Hk, n, D], uniformF32(Hk * n * D, 2));
  writeTensor(files.v, [Hk, n, D], uniformF32(Hk * n * D, 3));
  writeTensor(files.x, [n, dModel], uniformF32(n * dModel, 4));
  const r = 1 / Math.sqrt(dModel);
  const m = (rows: number, seed: number) => ({ shape: [rows, dModel], data: uniformF32(rows * dModel, seed, -r, r) });
  writeSafetensors(files.w, {
    'q_proj.weight': m(H * D, 5),
    'k_proj.weight': m(Hk * D, 6),
    'v_proj.weight': m(Hk * D, 7),
    'o_proj.weight': m(dModel, 8),
  });
  const common = ['--out', files.out, '--backend', backend, '--threads', String(threads), '--causal'];
  const attention: RunMeasurement[] = [];
  const layer: RunMeasurement[] = [];
  for (let rep = 0; rep < reps; rep++) {
    attention.push(await measureRun(['--q', files.q, '--k', files.k, '--v', files.v, ...common]));
    layer.push(
      await measureRun(['--x', files.x, '--weights', files.w, '--heads', String(H), '--kv-heads', String(Hk), ...common], 'layer'),
    );
  }
  const flops = attention[0]!.result.flops;
  const row = (who: string, runs: typeof attention): BenchRow => {
    const ms = median(runs.map((x) => x.result.computeMs));
    return {
      who,
      n,
      H,
      D,
      causal: true,
      ms,
      processMs: median(runs.map((x) => x.processMs)),
      gflops: flops / 1e6 / ms,
      peakRssMB: Math.max(...runs.map((x) => x.result.peakRssMB)),
    };
  };
  const rows = [row(`longattn ${backend} (attention of the layer)`, attention), row(`longattn layer ${backend}`, layer)];
  return { rows, addedPercent: 100 * (rows[1]!.ms! / rows[0]!.ms! - 1) };
}
