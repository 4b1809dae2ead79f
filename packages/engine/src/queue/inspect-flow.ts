import { maskRule, visiblePairs, type AttentionSpec } from '@longattn/attention';
import type { FlowJob } from 'bullmq';
import type { ChunkRef } from '../inspect/chunk.ts';
import { childOptions, rootOptions } from './job-options.ts';
import { flowIds, QUEUES } from './names.ts';

/** Data of a chunk job (queue tiles, name `chunk`): chunks [from, to) of chunksOf(spec). Never tensors. */
export interface ChunkJobData {
  job: string;
  from: number;
  to: number;
}

/**
 * Float64 work per chunk job: the statistics pass runs in plain JS (≈ 1 GFLOP/s per thread
 * here), so 1 GFLOP is about a second, far above the queue's 1–2 ms per job.
 */
export const CHUNK_JOB_FLOPS = 1e9;

/** 2·D per visible (query, key) pair of a chunk: its share of the pass's progress. */
export function chunkFlops(spec: AttentionSpec, chunk: ChunkRef): number {
  return 2 * spec.D * visiblePairs(maskRule(spec), chunk.rowStart, chunk.rows, 0, spec.Sk);
}

/**
 * Consecutive chunk ranges [from, to), each about CHUNK_JOB_FLOPS (or `chunksPerJob` chunks).
 * The grouping only decides who computes what: results are stored per chunk and folded in chunk
 * order, so the report's bits do not depend on it.
 */
export function chunkRanges(flops: readonly number[], chunksPerJob?: number): [number, number][] {
  const ranges: [number, number][] = [];
  let from = 0;
  let work = 0;
  for (let i = 0; i < flops.length; i++) {
    work += flops[i]!;
    const full = chunksPerJob ? i + 1 - from >= chunksPerJob : work >= CHUNK_JOB_FLOPS;
    if (full || i === flops.length - 1) {
      ranges.push([from, i + 1]);
      from = i + 1;
      work = 0;
    }
  }
  return ranges;
}

/**
 * The statistics pass's flow: root `inspect` (queue jobs, id JOB-i: folds the chunks in order and
 * writes the outputs) ← one `chunk` job per range (queue tiles, ids JOB-cN). Retries, failure
 * propagation and removal: rootOptions and childOptions (job-options.ts).
 */
export function buildInspectFlow(id: string, ranges: readonly [number, number][]): FlowJob {
  return {
    name: 'inspect',
    queueName: QUEUES.jobs,
    data: { job: id },
    opts: rootOptions(flowIds.inspect(id)),
    children: ranges.map(([from, to], i) => ({
      name: 'chunk',
      queueName: QUEUES.tiles,
      data: { job: id, from, to } satisfies ChunkJobData,
      opts: childOptions(flowIds.chunk(id, i)),
    })),
  };
}
