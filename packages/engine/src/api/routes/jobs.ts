import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { inspectRequestOf } from '../inspect-options.ts';
import { layerRequestOf } from '../layer-options.ts';
import { specOptions } from '../options.ts';
import { errorSchema, jobIdParams, jobViewSchema, listQuery, submitBodySchema } from '../schemas.ts';
import { receiveUpload, type Upload } from '../upload.ts';

const notFound = () => httpError(404, 'no such job');

/** POST /v1/jobs, GET /v1/jobs, GET /v1/jobs/:id, DELETE /v1/jobs/:id. */
export function jobRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post(
    '/v1/jobs',
    {
      schema: {
        summary:
          'Submit an attention job (multipart: options, q, k, v), an inspect job (options, q, k) or a layer job (options, x, weights, x-kv); any kind takes a block mask part `mask`',
        consumes: ['multipart/form-data'],
        body: submitBodySchema,
        response: {
          201: { type: 'object', properties: { id: { type: 'string' }, state: { type: 'string' } } },
          400: errorSchema,
          401: errorSchema,
          413: errorSchema,
        },
      },
      // The body is a multipart stream, checked part by part (upload.ts); the schema documents it.
      validatorCompiler: () => () => true,
    },
    async (request, reply) => {
      const createdAt = Date.now();
      const upload = await receiveUpload(request, ctx.engine, ctx, ctx.uploadCapBytes, (n) => ctx.metrics.uploadBytes.inc(n));
      const received = Date.now();
      try {
        const { options } = upload;
        const common = {
          options: specOptions(options, upload.mask),
          backend: options.backend,
          ...(options.blockQ ? { blockQ: options.blockQ } : {}),
          ...(options.blockK ? { blockK: options.blockK } : {}),
          allowNonfinite: options.allowNonfinite,
        };
        const manifest =
          options.kind === 'inspect'
            ? await submitInspectUpload(ctx, upload, inspectRequestOf.bind(null, options), common)
            : upload.layer
              ? await submitOwnId(ctx, upload, () =>
                  ctx.engine.submitLayer(layerRequestOf(options, upload.layer!, common), { blobs: ctx.blobs }),
                )
              : (await ctx.engine.submitUploaded(upload.job, { inputs: upload.inputs, ...common })).manifest;
        await ctx.jobs.create(request.tenant, manifest.id, options, createdAt);
        const timing = { receive: received - createdAt, submit: Date.now() - received };
        request.log.info({ job: manifest.id, tenant: request.tenant, bytes: upload.bytes, ms: timing }, 'job submitted');
        return reply
          .code(201)
          .header('server-timing', `receive;dur=${timing.receive}, submit;dur=${timing.submit}`)
          .send({ id: manifest.id, state: 'queued' });
      } finally {
        await upload.removeFiles();
      }
    },
  );

  app.get(
    '/v1/jobs',
    {
      schema: {
        summary: 'This tenant’s jobs, newest first',
        querystring: listQuery,
        response: {
          200: {
            type: 'object',
            properties: { jobs: { type: 'array', items: jobViewSchema }, total: { type: 'integer' }, next: { type: 'integer' } },
          },
        },
      },
    },
    async (request) => {
      const { limit, offset } = request.query as { limit: number; offset: number };
      const { ids, total } = await ctx.jobs.list(request.tenant, offset, limit);
      const jobs = [];
      for (const id of ids) {
        const record = await ctx.jobs.owned(request.tenant, id);
        if (record) jobs.push(await ctx.jobs.view(id, record));
      }
      return { jobs, total, ...(offset + ids.length < total ? { next: offset + ids.length } : {}) };
    },
  );

  app.get(
    '/v1/jobs/:id',
    {
      schema: {
        summary: 'A job’s state, progress, timings, error',
        params: jobIdParams,
        response: { 200: jobViewSchema, 404: errorSchema },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const record = await ctx.jobs.owned(request.tenant, id);
      if (!record) throw notFound();
      return ctx.jobs.cachedView(id, record);
    },
  );

  app.delete(
    '/v1/jobs/:id',
    {
      schema: {
        summary: 'Cancel a job: queued tiles removed, running ones stop, partials and inputs deleted (a done job’s result too)',
        params: jobIdParams,
        response: {
          200: { type: 'object', properties: { id: { type: 'string' }, state: { type: 'string' }, was: { type: 'string' } } },
          404: errorSchema,
        },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const record = await ctx.jobs.owned(request.tenant, id);
      if (!record) throw notFound();
      const was = (await ctx.jobs.view(id, record)).state;
      try {
        await ctx.engine.cancel(id);
      } catch (error) {
        if ((error as Error).name !== 'InputError') throw error; // the queue's record is already gone
      }
      await ctx.jobs.markCancelled(id);
      return { id, state: 'cancelled', was };
    },
  );
}

export { notFound };

/**
 * An inspect job is submitted from its parts' files (every part of an inspect upload is received
 * to a temp file: upload.ts), under an id of its own; the upload's placeholder record is dropped.
 */
async function submitInspectUpload(
  ctx: ApiContext,
  upload: Upload,
  request: (refs: { q: string; k: string }, common: Parameters<typeof inspectRequestOf>[2]) => ReturnType<typeof inspectRequestOf>,
  common: Parameters<typeof inspectRequestOf>[2],
) {
  const ref = (which: 'q' | 'k'): string => {
    const input = upload.inputs[which];
    if (!('ref' in input)) throw new Error(`inspect upload part ${which} was not received to a file`);
    return input.ref;
  };
  return submitOwnId(ctx, upload, () => ctx.engine.submitInspect(request({ q: ref('q'), k: ref('k') }, common), { blobs: ctx.blobs }));
}

/** Inspect and layer jobs are submitted from files under an id of their own: the upload's placeholder record is dropped. */
async function submitOwnId<T>(ctx: ApiContext, upload: Upload, submit: () => Promise<T>): Promise<T> {
  try {
    return await submit();
  } finally {
    await ctx.engine.abandonUpload(upload.job);
  }
}
