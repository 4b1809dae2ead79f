import { strideBlocks } from '@longattn/attention';
import { createLinear } from '@longattn/kernels';
import type { TensorReader } from '@longattn/tensor';
import { f32Bytes, type BlobStore } from '../blobs/blob-store.ts';
import { resolveBlocks } from '../blocks.ts';
import { openLayerInputs, type LayerInputs } from '../layer/layer-inputs.ts';
import type { LayerRequest } from '../layer/request.ts';
import { layerFlops } from '../layer/run-layer.ts';
import { planLimits, plannedWithinLimits } from '../limits.ts';
import { batchPlan } from './batching.ts';
import type { SubmitParts } from './inspect-submit.ts';
import { buildLayerFlow, projectRanges } from './layer-flow.ts';
import { OPTIONAL_TENSORS, type LayerManifest, type LayerTensor } from './layer-manifest.ts';
import { recordUploading } from './job-record.ts';
import { type JobManifest, planManifest } from './manifest.ts';
import { blobNames, jobKeys, newJobId } from './names.ts';
import type { SubmitOptions } from './queue-engine.ts';

export interface LayerSubmitOptions extends Pick<SubmitOptions, 'blobs' | 'limits' | 'jobFlops' | 'tilesPerJob'> {
  /** Projection blocks per projection job (tests: several jobs on a small problem); default about LAYER_JOB_FLOPS each. */
  blocksPerJob?: number;
}

/** Rows of X moved per write: about 1 MiB. */
const UPLOAD_BYTES = 1 << 20;

/** Streams a row-major [rows, width] tensor into a blob as float32, about UPLOAD_BYTES at a time, then seals it. */
async function uploadRows(store: BlobStore, name: string, reader: TensorReader, rows: number, width: number): Promise<void> {
  const step = Math.max(1, Math.floor(UPLOAD_BYTES / (4 * width)));
  for (let r = 0; r < rows; r += step) {
    const n = Math.min(step, rows - r) * width;
    await store.write(name, r * width * 4, f32Bytes(reader.readRuns(r * width, 1, n, n)));
  }
  await store.seal(name, { size: rows * width * 4, meta: { dtype: 'f32', shape: [rows, width] } });
}

/** Each tensor of the layer under its Hugging Face name (without the prefix). */
function tensorsOf(inputs: LayerInputs): [LayerTensor, TensorReader][] {
  const w = inputs.weights;
  const all: [LayerTensor, TensorReader | undefined][] = [
    ['q_proj.weight', w.wq],
    ['k_proj.weight', w.wk],
    ['v_proj.weight', w.wv],
    ['o_proj.weight', w.wo],
    ['q_proj.bias', w.bq],
    ['k_proj.bias', w.bk],
    ['v_proj.bias', w.bv],
    ['o_proj.bias', w.bo],
  ];
  return all.filter((e): e is [LayerTensor, TensorReader] => e[1] !== undefined);
}

/**
 * Submits a layer job (docs/flow.md, "Layers on the queue"): validates X, --x-kv and the weights
 * exactly as the local engine does (openLayerInputs: a bad tensor is an InputError naming it,
 * before anything is created), plans the attention of the Q, K, V they make, uploads X (and Xkv)
 * as row-major float32 and each weight as a blob, then adds the first stage's flow (projection
 * jobs → root JOB-p, which adds the attention flow). The request's output paths are the caller's.
 * On any failure nothing of the job is left.
 */
export async function submitLayerJob(parts: SubmitParts, request: LayerRequest, options: LayerSubmitOptions): Promise<JobManifest> {
  const inputs = openLayerInputs(request);
  const id = newJobId();
  let store: BlobStore | undefined;
  try {
    const { spec } = inputs;
    const { backend, blocks: defaults } = await parts.resolveBackend(request.backend ?? 'auto');
    const blocks = resolveBlocks(request, strideBlocks(spec, defaults));
    const thePlan = plannedWithinLimits(spec, blocks, planLimits(options.limits), 'queue');
    const batch = {
      ...(options.tilesPerJob !== undefined ? { tilesPerJob: options.tilesPerJob } : {}),
      ...(options.jobFlops !== undefined ? { jobFlops: options.jobFlops } : {}),
    };
    const groups = batchPlan(thePlan, batch);
    const tensors = tensorsOf(inputs);
    const present = new Set(tensors.map(([name]) => name));
    const layerPart = {
      dModel: inputs.dModel,
      dKv: inputs.xKv.shape.at(-1)!,
      outDim: inputs.outDim,
      optional: OPTIONAL_TENSORS.filter((n) => present.has(n)),
      blocksPerJob: options.blocksPerJob ?? 0,
    };
    const { first, last } = projectRanges(spec, blocks.blockQ, layerPart);
    const layer: LayerManifest = {
      ...layerPart,
      xRank: inputs.batched ? 3 : 2,
      cross: request.xKv !== undefined,
      linear: request.projection ?? (await createLinear()).name,
      ropeTheta: inputs.ropeTheta ?? 0,
      inJobs: first.length,
      outJobs: last.length,
      flops: layerFlops(inputs, thePlan).total,
      batch,
    };
    store = await parts.store(options.blobs ?? 'redis', id);
    const { B, H, Sq: S, Sk: Skv, D } = spec;
    const qShape = inputs.batched ? [B, H, S, D] : [H, S, D];
    const manifest: JobManifest = {
      ...planManifest({ id, spec, qShape, ...blocks, backend, blobs: store.location }, thePlan, groups),
      layer,
    };
    const hash = jobKeys.hash(id);
    await recordUploading(parts.redis, id, manifest);
    await uploadRows(store, blobNames.layerInput(id, 'x'), inputs.x, B * S, inputs.dModel);
    if (layer.cross) await uploadRows(store, blobNames.layerInput(id, 'xkv'), inputs.xKv, B * Skv, layer.dKv);
    for (const [name, reader] of tensors) await store.putMany([{ name: blobNames.weight(id, name), data: f32Bytes(reader.readAll()) }]);
    await parts.redis.hset(hash, 'state', 'queued');
    await parts.addFlow(buildLayerFlow(id, 'in', first, 0));
    return manifest;
  } catch (error) {
    await parts.discard(id, store).catch(() => {});
    throw error;
  } finally {
    inputs.close();
  }
}
