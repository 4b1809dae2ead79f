import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';

/** /healthz (the process answers), /readyz (Redis answers within 1 s), /metrics (Prometheus), /openapi.json. */
export function opsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const hide = { schema: { hide: true } };
  app.get('/healthz', hide, async () => ({ ok: true }));
  app.get('/readyz', hide, async (_request, reply) => {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('Redis did not answer within 1 s')), 1000).unref());
    try {
      await Promise.race([ctx.redis.ping(), timeout]);
      return { ok: true };
    } catch (error) {
      return reply.code(503).send({ ok: false, error: (error as Error).message });
    }
  });
  app.get('/metrics', hide, async (_request, reply) => {
    const text = await ctx.metrics.registry.metrics();
    return reply.header('content-type', ctx.metrics.registry.contentType).send(text);
  });
  app.get('/openapi.json', hide, async () => app.swagger());
}
