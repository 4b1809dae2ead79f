import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { lseShape } from '@longattn/attention';
import { createTensorWriter, elementCount, npyHeader } from '@longattn/tensor';
import { JobOutput } from '../../output.ts';
import type { BlobStore } from '../../blobs/blob-store.ts';
import { layerAttnShape, writeLayerAttn } from '../../queue/layer-output.ts';
import type { JobManifest } from '../../queue/manifest.ts';
import type { ApiContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { errorSchema, jobIdParams } from '../schemas.ts';
import { notFound } from './jobs.ts';

/**
 * GET /v1/jobs/:id/result/{out,lse,attn}: O (Q's shape and layout; a layer job's Y), LSE and a layer
 * job's attention output O (`attn`, `[B, S, H, D]` as `--attn-out`) as float32 .npy, the bytes
 * `longattn result` writes: for bhsd jobs the result blobs streamed as they are stored behind an
 * .npy header (the same order), for bshd ones written by the same JobOutput to a temp file and
 * streamed. 409 until the job is done. (`report`, `map` of inspect jobs: inspect-results.ts.)
 */
export function resultRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/jobs/:id/result/:what',
    {
      schema: {
        summary: 'A done job’s O or LSE (.npy, streamed; a layer job’s out is Y, its attn O as [B,S,H,D]); 409 until done',
        params: {
          ...jobIdParams,
          required: ['id', 'what'],
          properties: { ...jobIdParams.properties, what: { type: 'string', enum: ['out', 'lse', 'attn'] } },
        },
        produces: ['application/octet-stream'],
        response: { 404: errorSchema, 409: errorSchema },
      },
    },
    async (request, reply) => {
      const { id, what } = request.params as { id: string; what: 'out' | 'lse' | 'attn' };
      const record = await ctx.jobs.owned(request.tenant, id);
      if (!record) throw notFound();
      const view = await ctx.jobs.view(id, record);
      if (view.state !== 'done') throw httpError(409, `job ${id} is ${view.state}; its result is available when it is done`);
      const result = await ctx.engine.resultBlobs(id).catch(gone(id));
      if (what === 'lse' && result.manifest.spec.linear)
        throw httpError(404, `job ${id} is linear attention (an approximation): it has no LSE`);
      if (what === 'attn' && !result.manifest.layer)
        throw httpError(404, `job ${id} is not a layer job: its attention output is result/out`);
      if (what !== 'attn' && result.manifest.spec.layout === 'bhsd') return sendBlob(reply, id, what, result);
      const dir = await mkdtemp(join(ctx.tmp, 'longattn-result-'));
      try {
        const file = join(dir, `${what}.npy`);
        if (what === 'attn') {
          // A layer's O: as `longattn layer --attn-out` writes it, from the O blob it keeps beside Y.
          const writer = createTensorWriter(file, layerAttnShape(result.manifest), { argument: 'attn', name: 'attn' });
          try {
            await writeLayerAttn(result.store, result.manifest, writer);
            writer.commit();
          } finally {
            writer.abort();
          }
        } else {
          const other = join(dir, `${what === 'out' ? 'lse' : 'out'}.npy`);
          const [out, lse] = what === 'out' ? [file, other] : [other, file];
          await ctx.engine.download(id, new JobOutput(result.manifest.spec, result.manifest.qShape, out, lse));
        }
        const stream = createReadStream(file);
        stream.on('close', () => void rm(dir, { recursive: true, force: true }));
        return reply
          .header('content-type', 'application/octet-stream')
          .header('content-disposition', `attachment; filename="${id}-${what}.npy"`)
          .send(stream);
      } catch (error) {
        await rm(dir, { recursive: true, force: true });
        return gone(id)(error);
      }
    },
  );
}

/** Bytes read from a result blob per chunk of the response. */
const CHUNK_BYTES = 1 << 20;

/** A result gone meanwhile (collected, cancelled): 409; anything else as it is. */
const gone =
  (id: string) =>
  (error: unknown): never => {
    throw /result was already collected/.test((error as Error).message) ? httpError(409, `job ${id}: its result was removed`) : error;
  };

/** Streams a bhsd job's O or LSE blob behind the .npy header of its output shape (Q's; LSE's as lseShape). */
function sendBlob(
  reply: FastifyReply,
  id: string,
  what: 'out' | 'lse',
  result: { manifest: JobManifest; store: BlobStore; out: string; lse: string },
): FastifyReply {
  const { manifest, store } = result;
  const { spec } = manifest;
  // A layer job's `out` is Y: [B, S, outDim] row-major, X's batch dim kept or dropped as X's.
  const { layer } = manifest;
  const out = layer ? [...(layer.xRank === 3 ? [spec.B] : []), spec.Sq, layer.outDim] : manifest.qShape;
  const shape = what === 'out' ? out : lseShape(manifest.qShape.length, spec.B, spec.H, spec.Sq);
  const header = npyHeader(shape, 'f32');
  const size = elementCount(shape) * 4;
  const name = result[what];
  async function* bytes(): AsyncGenerator<Uint8Array> {
    yield header;
    for (let at = 0; at < size; at += CHUNK_BYTES) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, size - at));
      await store.readInto(name, at, chunk);
      yield chunk;
    }
  }
  return reply
    .header('content-type', 'application/octet-stream')
    .header('content-disposition', `attachment; filename="${id}-${what}.npy"`)
    .header('content-length', header.length + size)
    .send(Readable.from(bytes()));
}
