import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { lseShape } from '@longattn/attention';
import { writeTensor } from '@longattn/tensor';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bytesToF32 } from '../../blobs/blob-store.ts';
import type { InspectOutput } from '../../queue/blob-layout.ts';
import type { ApiContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { errorSchema, jobIdParams } from '../schemas.ts';
import { notFound } from './jobs.ts';

/**
 * The results of inspect jobs (docs/contracts.md, "HTTP API"):
 *   GET /v1/jobs/:id/result/report    the inspect report (JSON, the bytes `longattn inspect --json` prints
 *                                     before its `run` part); for other kinds the job's view, as before
 *   GET /v1/jobs/:id/result/map       the attention map (PNG), when submitted with map: true
 *   GET /v1/jobs/:id/result/received  Σ_i p_ij per key (.npy float32, [B,H,Sk] with Q's leading dims dropped)
 *   GET /v1/jobs/:id/result/weights   the weight rows of rows A:B (.npy float32, [B,H,B−A,Sk])
 * 404 for another tenant's job, 409 until done, 404 for an output the job does not have.
 */
export function inspectResultRoutes(app: FastifyInstance, ctx: ApiContext): void {
  /** The job's record and view when the tenant owns it and it is done (else 404 / 409). */
  const doneJob = async (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    const record = await ctx.jobs.owned(request.tenant, id);
    if (!record) throw notFound();
    const view = await ctx.jobs.view(id, record);
    if (view.state !== 'done') throw httpError(409, `job ${id} is ${view.state}; its result is available when it is done`);
    return { id, record, view };
  };
  /** An output blob of a done inspect job; 404 when the job is another kind or has no such output. */
  const output = async (id: string, kind: string | undefined, what: InspectOutput): Promise<Uint8Array> => {
    if (kind !== 'inspect') throw httpError(404, `job ${id} is not an inspect job; it has no ${what}`);
    const bytes = await ctx.engine.inspectOutput(id, what);
    if (!bytes) throw httpError(404, `job ${id} has no ${what} (submit it with options.${what === 'weights' ? 'weightsOut' : what}: true)`);
    return bytes;
  };
  const params = (what: string) => ({ ...jobIdParams, description: what });

  app.get(
    '/v1/jobs/:id/result/report',
    {
      schema: {
        summary: 'A done job’s report: an inspect job’s statistics and top-k lists (JSON), another job’s view; 409 until done',
        params: params('report'),
        produces: ['application/json'],
        response: { 404: errorSchema, 409: errorSchema },
      },
    },
    async (request, reply) => {
      const { id, record, view } = await doneJob(request);
      if (record.kind !== 'inspect') return view;
      return reply.header('content-type', 'application/json; charset=utf-8').send(Buffer.from(await output(id, record.kind, 'report')));
    },
  );

  app.get(
    '/v1/jobs/:id/result/map',
    {
      schema: {
        summary: 'A done inspect job’s attention map (PNG: a panel per head, log colour scale); 409 until done',
        params: params('map'),
        produces: ['image/png'],
        response: { 404: errorSchema, 409: errorSchema },
      },
    },
    async (request, reply) => {
      const { id, record } = await doneJob(request);
      return reply.header('content-type', 'image/png').send(Buffer.from(await output(id, record.kind, 'map')));
    },
  );

  for (const what of ['received', 'weights'] as const) {
    app.get(
      `/v1/jobs/:id/result/${what}`,
      {
        schema: {
          summary: `A done inspect job’s ${what === 'received' ? 'received attention per key' : 'weight rows'} (.npy float32); 409 until done`,
          params: params(what),
          produces: ['application/octet-stream'],
          response: { 404: errorSchema, 409: errorSchema },
        },
      },
      async (request, reply) => {
        const { id, record } = await doneJob(request);
        const bytes = await output(id, record.kind, what);
        const { manifest } = await ctx.engine.status(id);
        const { spec, inspect } = manifest;
        const lead = lseShape(manifest.qShape.length, spec.B, spec.H, spec.Sq).slice(0, -1);
        const rows = inspect!.settings.rowsTo - inspect!.settings.rowsFrom;
        const shape = what === 'received' ? [...lead, spec.Sk] : [...lead, rows, spec.Sk];
        // The .npy bytes `longattn inspect --received/--weights-out` writes, through the same writer.
        const dir = await mkdtemp(join(ctx.tmp, 'longattn-result-'));
        try {
          writeTensor(join(dir, `${what}.npy`), shape, bytesToF32(bytes));
          return reply
            .header('content-type', 'application/octet-stream')
            .header('content-disposition', `attachment; filename="${id}-${what}.npy"`)
            .send(await readFile(join(dir, `${what}.npy`)));
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    );
  }
}
