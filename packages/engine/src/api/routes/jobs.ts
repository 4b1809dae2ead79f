import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { specOptions } from '../options.ts';
import { errorSchema, jobIdParams, jobViewSchema, listQuery, submitBodySchema } from '../schemas.ts';
import { receiveUpload } from '../upload.ts';

const notFound = () => httpError(404, 'no such job');

/** POST /v1/jobs, GET /v1/jobs, GET /v1/jobs/:id, DELETE /v1/jobs/:id. */
export function jobRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post(
    '/v1/jobs',
    {
      schema: {
        summary: 'Submit an attention job (multipart: options, q, k, v)',
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
        const { manifest } = await ctx.engine.submitUploaded(upload.job, {
          inputs: upload.inputs,
          options: specOptions(options),
          backend: options.backend,
          ...(options.blockQ ? { blockQ: options.blockQ } : {}),
          ...(options.blockK ? { blockK: options.blockK } : {}),
          allowNonfinite: options.allowNonfinite,
        });
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
