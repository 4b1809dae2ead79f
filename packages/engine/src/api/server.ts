import { tmpdir } from 'node:os';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import type { Queue } from 'bullmq';
import Fastify, { type FastifyInstance } from 'fastify';
import { connectRedis } from '../queue/connection.ts';
import { QueueEngine } from '../queue/queue-engine.ts';
import type { RunningService } from '../queue/service.ts';
import { mountAdmin } from './admin.ts';
import { API_DEFAULTS } from './config.ts';
import type { ApiContext } from './context.ts';
import { dashboardRoutes } from './dashboard.ts';
import { errorHandler } from './errors.ts';
import { ApiJobs } from './jobs.ts';
import { bearerKey, type ApiKeys } from './keys.ts';
import { ApiMetrics } from './metrics.ts';
import { JobSignals } from './signals.ts';
import { eventRoutes } from './routes/events.ts';
import { jobRoutes } from './routes/jobs.ts';
import { opsRoutes } from './routes/ops.ts';
import { inspectResultRoutes } from './routes/inspect-results.ts';
import { resultRoutes } from './routes/results.ts';

export interface ApiOptions {
  /** Redis URL of the queue (`--redis`). */
  redis: string;
  keys: ApiKeys;
  /** bull-board at /admin/queues with this key; without it the board is off. */
  adminKey?: string;
  /** Blob store of uploaded jobs (`--blobs`, see openBlobStore). Default `redis`. */
  blobs?: string;
  /** Upload cap in bytes (413 past it). Default API_DEFAULTS.uploadCapBytes. */
  uploadCapBytes?: number;
  /** Parent of the upload/result temp dirs. Default the OS's. */
  tmp?: string;
  /** pino level for the request log (stderr). Default `info`. */
  logLevel?: string;
  eventPollMs?: number;
}

export interface ApiServer {
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Builds the API (not listening): fastify, its plugins, every route. */
export async function buildApi(options: ApiOptions): Promise<ApiServer> {
  // The api opens only the store it submits to (besides the queue's Redis): docs/limits.md, "Queue and Redis".
  const engine = await QueueEngine.connect(options.redis, { blobs: [options.blobs ?? 'redis'] });
  const redis = connectRedis(options.redis);
  const jobs = new ApiJobs(redis, engine);
  const signals = new JobSignals(options.redis);
  const metrics = new ApiMetrics(options.redis, jobs, signals);
  const ctx: ApiContext = {
    redis,
    engine,
    jobs,
    metrics,
    signals,
    blobs: options.blobs ?? 'redis',
    tmp: options.tmp ?? tmpdir(),
    uploadCapBytes: options.uploadCapBytes ?? API_DEFAULTS.uploadCapBytes,
    eventPollMs: options.eventPollMs ?? API_DEFAULTS.eventPollMs,
  };
  const app = Fastify({
    logger: { level: options.logLevel ?? 'info', stream: process.stderr, redact: ['req.headers.authorization', 'req.headers.cookie'] },
    // Schema errors name the field: `querystring/limit must be <= 100`.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
  });
  app.decorateRequest('tenant', '');
  app.setErrorHandler(errorHandler);
  // At most: options, three tensors (q, k, v or x, weights, x-kv) and a block mask.
  await app.register(multipart, {
    limits: { fileSize: ctx.uploadCapBytes, files: 4, fields: 1, fieldSize: 64 << 10, parts: 5 },
    throwFileSizeLimit: true,
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'longattn', description: 'Exact attention for very long documents, as batch jobs', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  opsRoutes(app, ctx);
  dashboardRoutes(app);
  const adminQueues: Queue[] = await mountAdmin(app, options.redis, options.adminKey);
  await app.register(async (v1) => {
    v1.addHook('onRequest', async (request, reply) => {
      const key = bearerKey(request.headers.authorization);
      const tenant = key === undefined ? undefined : options.keys.tenantOf(key);
      if (!tenant) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .send({
            statusCode: 401,
            error: 'Unauthorized',
            message: key === undefined ? 'Authorization: Bearer KEY required' : 'unknown API key',
          });
      }
      request.tenant = tenant;
    });
    jobRoutes(v1, ctx);
    eventRoutes(v1, ctx);
    resultRoutes(v1, ctx);
    inspectResultRoutes(v1, ctx);
  });
  await signals.ready();
  return {
    app,
    async close() {
      await app.close();
      await Promise.all([metrics.close(), signals.close(), engine.close(), ...adminQueues.map((q) => q.close())]);
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** Starts the API on host:port; `longattn api` runs it until SIGTERM. */
export async function startApi(options: ApiOptions & { host?: string; port: number }): Promise<RunningService & { url: string }> {
  const server = await buildApi(options);
  const address = await server.app.listen({ host: options.host ?? '0.0.0.0', port: options.port });
  const url = address.replace('0.0.0.0', '127.0.0.1');
  return {
    id: `api-${process.pid}`,
    url,
    description: `api on ${url} for queues bull:{longattn} (${options.keys.size} keys, blobs ${options.blobs ?? 'redis'}${options.adminKey ? ', admin board at /admin/queues' : ''})`,
    close: () => server.close(),
  };
}
