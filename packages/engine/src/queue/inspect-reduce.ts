import { FlowProducer, type FlowJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { f32Bytes } from '../blobs/blob-store.ts';
import { JobCancelledError, RetryableJobError } from '../errors.ts';
import { decodeChunkResult } from '../inspect/chunk-codec.ts';
import { renderMap } from '../inspect/map-png.ts';
import { chunksOf, InspectFold, mapMeans } from '../inspect/report.ts';
import { inspectReport } from '../inspect/summary.ts';
import { QUEUE_DEFAULTS } from './config.ts';
import { bullConnection } from './connection.ts';
import { buildInspectFlow, chunkFlops, chunkRanges } from './inspect-flow.ts';
import type { JobContext } from './job-context.ts';
import { blobNames, jobKeys, QUEUE_PREFIX } from './names.ts';

/** A reducer's producer of the flows that follow a root (inspect's statistics pass, a layer's next stage); made on first use. */
export class InspectFlows {
  private producer: FlowProducer | undefined;

  constructor(private readonly url: string) {}

  /** Adds job `id`'s statistics pass; adding it again (a retried finalise) is a no-op (derived ids). */
  async add(ctx: JobContext): Promise<void> {
    const { id, spec, inspect } = ctx.manifest;
    const ranges = chunkRanges(
      chunksOf(spec).map((c) => chunkFlops(spec, c)),
      inspect!.chunksPerJob || undefined,
    );
    if (ranges.length !== inspect!.chunkJobs)
      throw new RetryableJobError(`job ${id}: ${ranges.length} chunk jobs planned, manifest says ${inspect!.chunkJobs}`);
    await this.addFlow(buildInspectFlow(id, ranges));
  }

  /** Adds a flow of derived ids (a layer job's next stage too): adding it again is a no-op. */
  async addFlow(flow: FlowJob): Promise<void> {
    if (!this.producer) {
      this.producer = new FlowProducer({ connection: bullConnection(this.url, QUEUE_DEFAULTS.commandTimeoutMs), prefix: QUEUE_PREFIX });
      this.producer.on('error', () => {});
    }
    await this.producer.add(flow);
  }

  async close(): Promise<void> {
    await this.producer?.close();
  }
}

/**
 * The end of an inspect job's attention flow (its finalise, every q-block reduced): seals the
 * LSE, drops what only that pass needed (V, O, partials) and adds the statistics pass. The job
 * stays queued. A cancel meanwhile cannot orphan the new flow: its discard waits for this
 * (locked) finalise to end before it removes the root, and removes the statistics root after it.
 */
export async function startInspectPass(ctx: JobContext, redis: Redis, flows: InspectFlows): Promise<{ inspect: true }> {
  const { id, spec } = ctx.manifest;
  await ctx.store.seal(blobNames.lse(id), {
    size: spec.B * spec.H * spec.Sq * 4,
    meta: { dtype: 'f32', shape: [spec.B, spec.H, spec.Sq] },
  });
  await ctx.store.delete([blobNames.input(id, 'v'), blobNames.out(id)]);
  await ctx.store.deletePrefix(`${id}/p/`);
  await redis.hsetnx(jobKeys.hash(id), 'inspectStartedAt', String(Date.now()));
  await flows.add(ctx);
  return { inspect: true };
}

/**
 * The statistics pass's root: every chunk stored → folds the chunks' results strictly in chunk
 * order (InspectFold, as the local engine folds them: the same bits whatever the worker count),
 * one chunk in memory at a time, and writes the report (JSON), received, weights and map blobs;
 * then deletes the chunks, inputs and LSE and marks the job done.
 */
export async function finishInspect(ctx: JobContext, redis: Redis): Promise<{ done: true }> {
  const { id, spec, inspect } = ctx.manifest;
  const hash = jobKeys.hash(id);
  const state = await redis.hget(hash, 'state');
  if (state === 'done') return { done: true };
  if (state !== 'queued') throw new JobCancelledError(`job ${id} is ${state ?? 'gone'}`);
  const stored = await redis.scard(jobKeys.chunks(id));
  if (stored !== inspect!.chunks) throw new RetryableJobError(`job ${id}: ${stored} of ${inspect!.chunks} chunks stored`);
  const { settings } = inspect!;
  const chunks = chunksOf(spec);
  const fold = new InspectFold(spec, settings, chunks);
  for (let i = 0; i < chunks.length; i++) {
    const [bytes] = await ctx.store.getMany([blobNames.chunk(id, i)]);
    if (!bytes) throw new RetryableJobError(`job ${id}: chunk ${i}'s result is missing`);
    fold.add(i, decodeChunkResult(bytes));
  }
  const outputs: { name: string; data: Uint8Array; meta?: Record<string, unknown> }[] = [];
  const report = inspectReport(spec, settings, fold.heads);
  outputs.push({ name: blobNames.inspectOut(id, 'report'), data: Buffer.from(JSON.stringify(report)), meta: { type: 'application/json' } });
  if (fold.received)
    outputs.push({
      name: blobNames.inspectOut(id, 'received'),
      data: f32Bytes(Float32Array.from(fold.received)),
      meta: { dtype: 'f32', shape: [spec.B, spec.H, spec.Sk] },
    });
  if (fold.weights)
    outputs.push({
      name: blobNames.inspectOut(id, 'weights'),
      data: f32Bytes(fold.weights),
      meta: { dtype: 'f32', shape: [spec.B, spec.H, settings.rowsTo - settings.rowsFrom, spec.Sk] },
    });
  if (fold.cells)
    outputs.push({
      name: blobNames.inspectOut(id, 'map'),
      data: await renderMap(spec, settings.mapRows, settings.mapCols, mapMeans(spec, settings, fold.cells)),
      meta: { type: 'image/png' },
    });
  await ctx.store.putMany(outputs);
  await ctx.store.deletePrefix(`${id}/c/`);
  await ctx.store.deletePrefix(`${id}/in/`);
  await ctx.store.delete([blobNames.lse(id)]);
  await redis
    .multi()
    .hset(hash, 'state', 'done', 'finishedAt', String(Date.now()), 'scores', fold.scores)
    .expire(hash, QUEUE_DEFAULTS.keepFinishedSeconds)
    .del(jobKeys.reduced(id), jobKeys.records(id), jobKeys.chunks(id))
    .exec();
  return { done: true };
}
