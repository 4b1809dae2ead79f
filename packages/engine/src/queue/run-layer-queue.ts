import { lseShape } from '@longattn/attention';
import { createTensorWriter, type TensorWriter } from '@longattn/tensor';
import { bytesToF32 } from '../blobs/blob-store.ts';
import { JobCancelledError } from '../errors.ts';
import { jobResult, type Progress } from '../job.ts';
import { type LayerRequest, type LayerResult, layerResult } from '../layer/request.ts';
import { PROJECT_ROWS } from '../layer/run-layer.ts';
import type { LayerSubmitOptions } from './layer-submit.ts';
import { layerAttnShape, writeLayerAttn } from './layer-output.ts';
import { QueueEngine } from './queue-engine.ts';

export interface LayerQueueOptions extends LayerSubmitOptions {
  /** Redis URL of the queue (`--redis`). */
  redis: string;
  /** Every stage in one count: the projections' and the attention's FLOPs (tiles: the attention's). */
  onProgress?: (progress: Progress) => void;
  /** Aborting cancels the job (nothing of it is left, no file written). */
  signal?: AbortSignal;
}

/**
 * `longattn layer --engine queue`: submits a layer job (QueueEngine.submitLayer), waits while
 * workers project K/V and Q, compute the attention and project O, then writes Y (and --attn-out O
 * as bshd, --lse) from the job's blobs with the local engine's writers, and removes the job. With
 * the same inputs, backend, blocks and projection GEMM every file is bitwise runLayer's: the same
 * GEMM calls on the same row blocks, the same tiles and merge order.
 */
export async function runLayerQueue(request: LayerRequest, options: LayerQueueOptions): Promise<LayerResult> {
  const started = performance.now();
  const engine = await QueueEngine.connect(options.redis);
  const writers: TensorWriter[] = [];
  try {
    const { redis: _redis, onProgress, signal, ...submitOptions } = options;
    const manifest = await engine.submitLayer(request, submitOptions);
    const id = manifest.id;
    if (signal?.aborted) {
      await engine.cancel(id);
      throw new JobCancelledError(`job ${id} cancelled`);
    }
    const { spec } = manifest;
    const layer = manifest.layer!;
    const { B, H, Sq: S } = spec;
    const lead = layer.xRank === 3 ? [B] : [];
    // Made before the wait, so a path that cannot be written fails before the work is done (and cancels it).
    try {
      writers.push(createTensorWriter(request.out, [...lead, S, layer.outDim], { argument: '--out' }));
      if (request.attnOut)
        writers.push(createTensorWriter(request.attnOut, layerAttnShape(manifest), { argument: '--attn-out', name: 'attn' }));
      if (request.lse)
        writers.push(createTensorWriter(request.lse, lseShape(layer.xRank + 1, B, H, S), { argument: '--lse', name: 'lse' }));
    } catch (error) {
      await engine.cancel(id);
      throw error;
    }
    const [y, attn, lse] = [writers[0]!, request.attnOut ? writers[1] : undefined, request.lse ? writers.at(-1) : undefined];
    const queued = performance.now();
    const status = await engine.wait(id, { ...(onProgress ? { onProgress } : {}), ...(signal ? { signal } : {}) });
    const computeMs = performance.now() - queued;
    const { store, out, lse: lseBlob } = await engine.resultBlobs(id);
    const read = async (name: string, at: number, count: number) => bytesToF32(await store.read(name, at * 4, count * 4));
    for (let b = 0; b < B; b++) {
      for (let r0 = 0; r0 < S; r0 += PROJECT_ROWS) {
        const rows = Math.min(PROJECT_ROWS, S - r0);
        const n = rows * layer.outDim;
        y.writeRuns((b * S + r0) * layer.outDim, await read(out, (b * S + r0) * layer.outDim, n), n, n);
      }
    }
    if (attn) await writeLayerAttn(store, manifest, attn);
    if (lse) {
      for (let row = 0; row < B * H * S; row += 1 << 18) {
        const n = Math.min(1 << 18, B * H * S - row);
        lse.writeRuns(row, await read(lseBlob, row, n), n, n);
      }
    }
    for (const w of writers) w.commit();
    writers.length = 0;
    await engine.remove(id);
    const submitted = status.submittedAt ?? Date.now();
    const attentionAt = status.attentionAt ?? submitted;
    const outAt = status.outAt ?? attentionAt;
    const result = jobResult(request, manifest, {
      backend: manifest.backend,
      device: status.devices.join('; '),
      engine: 'queue',
      threads: status.workers,
      wallMs: performance.now() - started,
      computeMs,
    });
    return layerResult(result, request.attnOut, {
      dModel: layer.dModel,
      outDim: layer.outDim,
      rope: layer.ropeTheta > 0,
      projection: layer.linear,
      projectionFlops: layer.flops,
      // Stage times from the reducer's stamps: first stage (K/V and Q together here), attention, o_proj.
      kvMs: attentionAt - submitted,
      attentionMs: outAt - attentionAt,
      outMs: (status.finishedAt ?? outAt) - outAt,
    });
  } finally {
    for (const w of writers) w.abort();
    await engine.close();
  }
}
