import type { AttentionSpec } from '@longattn/attention';
import type { FlowJob } from 'bullmq';
import { PROJECT_ROWS, rowBlocks } from '../layer/run-layer.ts';
import { childOptions, rootOptions } from './job-options.ts';
import type { LayerManifest } from './layer-manifest.ts';
import { flowIds, QUEUES } from './names.ts';

/**
 * One block of a layer job's projection work (docs/flow.md, "Layers on the queue"): rows
 * [r0, r0 + rows) of batch b. The blocks are the local engine's own (runLayer), so every GEMM
 * call — and with it every bit — is the same: `kv` PROJECT_ROWS rows of Xkv → K (RoPE) and V;
 * `q` one q-block's rows (blockQ) of X → Q for all heads (RoPE); `o` PROJECT_ROWS rows of O → Y.
 */
export interface LayerBlock {
  stage: 'kv' | 'q' | 'o';
  b: number;
  r0: number;
  rows: number;
}

/** Data of a projection job (queue tiles, name `project`): blocks [from, to) of layerBlocks(). Never tensors. */
export interface ProjectJobData {
  job: string;
  from: number;
  to: number;
}

/** Kernel-free work per projection job: ~2 GFLOP of GEMM (tens of ms on ort), far above the queue's 1–2 ms per job. */
export const LAYER_JOB_FLOPS = 2e9;
/** Most blocks per projection job (o stage without o_proj has no FLOPs: it only gathers O into Y). */
const MAX_BLOCKS_PER_JOB = 64;

/** Every projection block of a layer job, in order: the first stage's (kv, then q), then the o stage's. */
export function layerBlocks(spec: AttentionSpec, blockQ: number): { first: LayerBlock[]; last: LayerBlock[] } {
  const of = (stage: LayerBlock['stage'], S: number, size: number) =>
    [...rowBlocks(spec.B, S, size)].map(([b, r0, rows]) => ({ stage, b, r0, rows }));
  return { first: [...of('kv', spec.Sk, PROJECT_ROWS), ...of('q', spec.Sq, blockQ)], last: of('o', spec.Sq, PROJECT_ROWS) };
}

/** 2·in·out per row of each projection the block runs. */
export function blockFlops(
  spec: AttentionSpec,
  layer: Pick<LayerManifest, 'dModel' | 'dKv' | 'outDim' | 'optional'>,
  block: LayerBlock,
): number {
  const { H, Hk, D } = spec;
  if (block.stage === 'kv') return block.rows * 2 * 2 * layer.dKv * Hk * D;
  if (block.stage === 'q') return block.rows * 2 * layer.dModel * H * D;
  return layer.optional.includes('o_proj.weight') ? block.rows * 2 * H * D * layer.outDim : 0;
}

/**
 * The projection jobs: consecutive block ranges [from, to) (global block indices: the first
 * stage's blocks, then the last's), each about LAYER_JOB_FLOPS (or `blocksPerJob` blocks), never
 * across a stage. Which worker projects which block does not change a bit.
 */
export function projectRanges(
  spec: AttentionSpec,
  blockQ: number,
  layer: Pick<LayerManifest, 'dModel' | 'dKv' | 'outDim' | 'optional' | 'blocksPerJob'>,
): { blocks: LayerBlock[]; firstBlocks: number; first: [number, number][]; last: [number, number][] } {
  const { first, last } = layerBlocks(spec, blockQ);
  const blocks = [...first, ...last];
  const ranges = (from: number, to: number) => {
    const out: [number, number][] = [];
    let start = from;
    let work = 0;
    for (let i = from; i < to; i++) {
      work += blockFlops(spec, layer, blocks[i]!);
      const count = i + 1 - start;
      const full = layer.blocksPerJob ? count >= layer.blocksPerJob : work >= LAYER_JOB_FLOPS || count >= MAX_BLOCKS_PER_JOB;
      if (full || i === to - 1) {
        out.push([start, i + 1]);
        start = i + 1;
        work = 0;
      }
    }
    return out;
  };
  return { blocks, firstBlocks: first.length, first: ranges(0, first.length), last: ranges(first.length, blocks.length) };
}

/**
 * One projection stage's flow: root `layer-in` (id JOB-p: seals Q, K, V and adds the attention
 * flow) or `layer-out` (id JOB-y: seals Y, marks the job done) on queue jobs ← one `project` job
 * per range (queue tiles, ids JOB-jN, N counted over both stages). Retries, failure propagation
 * and removal: rootOptions and childOptions (job-options.ts).
 */
export function buildLayerFlow(id: string, stage: 'in' | 'out', ranges: readonly [number, number][], firstJob: number): FlowJob {
  return {
    name: stage === 'in' ? 'layer-in' : 'layer-out',
    queueName: QUEUES.jobs,
    data: { job: id },
    opts: rootOptions(stage === 'in' ? flowIds.layerIn(id) : flowIds.layerOut(id)),
    children: ranges.map(([from, to], i) => ({
      name: 'project',
      queueName: QUEUES.tiles,
      data: { job: id, from, to } satisfies ProjectJobData,
      opts: childOptions(flowIds.project(id, firstJob + i)),
    })),
  };
}
