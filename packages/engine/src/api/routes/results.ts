import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { JobOutput } from '../../output.ts';
import type { ApiContext } from '../context.ts';
import { httpError } from '../errors.ts';
import { errorSchema, jobIdParams } from '../schemas.ts';
import { notFound } from './jobs.ts';

/**
 * GET /v1/jobs/:id/result/{out,lse}: O (Q's shape and layout) and LSE as float32 .npy,
 * written by the same JobOutput as `longattn result` (so the bytes are the CLI's) to a temp file
 * and streamed. 409 until the job is done. (`report`, `map`: inspect-results.ts.)
 */
export function resultRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/jobs/:id/result/:what',
    {
      schema: {
        summary: 'A done job’s O or LSE (.npy, streamed); 409 until done',
        params: {
          ...jobIdParams,
          required: ['id', 'what'],
          properties: { ...jobIdParams.properties, what: { type: 'string', enum: ['out', 'lse'] } },
        },
        produces: ['application/octet-stream'],
        response: { 404: errorSchema, 409: errorSchema },
      },
    },
    async (request, reply) => {
      const { id, what } = request.params as { id: string; what: 'out' | 'lse' };
      const record = await ctx.jobs.owned(request.tenant, id);
      if (!record) throw notFound();
      const view = await ctx.jobs.view(id, record);
      if (view.state !== 'done') throw httpError(409, `job ${id} is ${view.state}; its result is available when it is done`);
      const status = await ctx.engine.status(id);
      if (what === 'lse' && status.manifest.spec.linear)
        throw httpError(404, `job ${id} is linear attention (an approximation): it has no LSE`);
      const dir = await mkdtemp(join(ctx.tmp, 'longattn-result-'));
      try {
        const file = join(dir, `${what}.npy`);
        const other = join(dir, `${what === 'out' ? 'lse' : 'out'}.npy`);
        const [out, lse] = what === 'out' ? [file, other] : [other, file];
        await ctx.engine.download(id, new JobOutput(status.manifest.spec, status.manifest.qShape, out, lse));
        const stream = createReadStream(file);
        stream.on('close', () => void rm(dir, { recursive: true, force: true }));
        return reply
          .header('content-type', 'application/octet-stream')
          .header('content-disposition', `attachment; filename="${id}-${what}.npy"`)
          .send(stream);
      } catch (error) {
        await rm(dir, { recursive: true, force: true });
        throw /result was already collected/.test((error as Error).message) ? httpError(409, `job ${id}: its result was removed`) : error;
      }
    },
  );
}
