import type { FlowJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { f32Bytes, type BlobStore } from '../blobs/blob-store.ts';
import { resolveBlocks } from '../blocks.ts';
import { openInputs } from '../inputs.ts';
import { chunksOf } from '../inspect/report.ts';
import type { InspectRequest } from '../inspect/request.ts';
import { inspectSettings, readLseFile } from '../inspect/run-inspect.ts';
import { planLimits, plannedWithinLimits } from '../limits.ts';
import { batchPlan } from './batching.ts';
import { buildFlow } from './flow.ts';
import { buildInspectFlow, chunkFlops, chunkRanges } from './inspect-flow.ts';
import { recordUploading } from './job-record.ts';
import { type JobManifest, planManifest } from './manifest.ts';
import { blobNames, jobKeys, newJobId } from './names.ts';
import type { SubmitOptions } from './queue-engine.ts';
import { uploadTensor } from './transfer.ts';

/** What submitting needs of a QueueEngine (its connection, stores and flow producer). */
export interface SubmitParts {
  redis: Redis;
  /** The store at `location` for job `id` (allow-listed, ready). */
  store(location: string, id: string): Promise<BlobStore>;
  addFlow(flow: FlowJob): Promise<unknown>;
  /** Removes whatever of job `id` exists (flows, blobs, record). */
  discard(id: string, store: BlobStore | undefined): Promise<void>;
  resolveBackend(requested: string): Promise<{ backend: string; blocks: { blockQ: number; blockK: number } }>;
}

export interface InspectSubmitOptions extends Pick<SubmitOptions, 'blobs' | 'limits' | 'jobFlops' | 'tilesPerJob'> {
  /** Chunks per chunk job (tests: several jobs on a small problem); default about CHUNK_JOB_FLOPS each. */
  chunksPerJob?: number;
}

/**
 * Submits an inspect job (docs/flow.md, "Inspect on the queue"): validates inputs and settings
 * (the request's output paths only say which outputs to make: files are the caller's), uploads
 * Q and K, then either the LSE-only attention flow that finds each row's LSE (the same plan and
 * tiles as `run`, V-free: lseOnly; its finalise starts the statistics pass), or, with `request.lse`, the
 * checked LSE and the statistics pass at once. On any failure nothing of the job is left.
 */
export async function submitInspectJob(parts: SubmitParts, request: InspectRequest, options: InspectSubmitOptions): Promise<JobManifest> {
  const inputs = openInputs({
    q: request.q,
    k: request.k,
    v: request.k,
    options: request.options,
    allowNonfinite: request.allowNonfinite ?? false,
  });
  const id = newJobId();
  let store: BlobStore | undefined;
  try {
    const { spec } = inputs;
    const settings = inspectSettings(spec, request);
    const lse = request.lse ? readLseFile(spec, request.lse) : undefined;
    const { backend, blocks: defaults } = await parts.resolveBackend(request.backend ?? 'auto');
    const blocks = resolveBlocks(request, defaults);
    const thePlan = plannedWithinLimits(spec, blocks, planLimits(options.limits), 'queue');
    const groups = lse ? [] : batchPlan(thePlan, options);
    const chunks = chunksOf(spec);
    const flops = chunks.map((c) => chunkFlops(spec, c));
    const ranges = chunkRanges(flops, options.chunksPerJob);
    store = await parts.store(options.blobs ?? 'redis', id);
    const manifest: JobManifest = {
      ...planManifest({ id, spec, qShape: [...inputs.q.shape], ...blocks, backend, blobs: store.location }, thePlan, groups, !lse),
      inspect: {
        settings,
        lseFrom: lse ? 'file' : 'pass',
        chunks: chunks.length,
        chunkJobs: ranges.length,
        chunksPerJob: options.chunksPerJob ?? 0,
        flops: flops.reduce((a, b) => a + b, 0),
      },
    };
    const hash = jobKeys.hash(id);
    await recordUploading(parts.redis, id, manifest);
    await uploadTensor(store, blobNames.input(id, 'q'), inputs.q, spec, spec.H, spec.Sq);
    await uploadTensor(store, blobNames.input(id, 'k'), inputs.k, spec, spec.Hk, spec.Sk);
    if (lse) {
      // Q's leading dims are dropped as for LSE files; the data is [B·H·Sq] in order either way.
      await store.write(blobNames.lse(id), 0, f32Bytes(lse));
      await store.seal(blobNames.lse(id), { size: lse.byteLength, meta: { dtype: 'f32', shape: [spec.B, spec.H, spec.Sq] } });
      await parts.redis.hset(hash, 'state', 'queued', 'inspectStartedAt', String(Date.now()));
      await parts.addFlow(buildInspectFlow(id, ranges));
    } else {
      await parts.redis.hset(hash, 'state', 'queued'); // the LSE pass reads no V (lseOnly): none uploaded
      await parts.addFlow(buildFlow(id, groups));
    }
    return manifest;
  } catch (error) {
    await parts.discard(id, store).catch(() => {});
    throw error;
  } finally {
    inputs.close();
  }
}
