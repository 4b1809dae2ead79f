import type { Redis } from 'ioredis';
import type { QueueEngine } from '../queue/queue-engine.ts';
import type { ApiJobs } from './jobs.ts';
import type { ApiMetrics } from './metrics.ts';
import type { JobSignals } from './signals.ts';

/** What every route of the API shares. */
export interface ApiContext {
  redis: Redis;
  engine: QueueEngine;
  jobs: ApiJobs;
  metrics: ApiMetrics;
  signals: JobSignals;
  /** Blob store location for uploaded jobs (see openBlobStore). */
  blobs: string;
  /** Parent of the per-upload and per-download temp dirs. */
  tmp: string;
  uploadCapBytes: number;
  eventPollMs: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant of the request's API key (set by the /v1 auth hook). */
    tenant: string;
  }
}
