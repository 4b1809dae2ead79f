// `@longattn/engine/api`: the HTTP API over the queue engine (fastify), started by `longattn api`.
export { buildApi, startApi } from './server.ts';
export type { ApiOptions, ApiServer } from './server.ts';
export { ApiKeys } from './keys.ts';
export { API_DEFAULTS } from './config.ts';
export { jobOptionsSchema, JOB_KINDS } from './options.ts';
export type { JobOptions } from './options.ts';
export type { InspectOptions } from './inspect-options.ts';
export type { InspectReport } from '../inspect/request.ts';
export type { JobView, ApiState } from './jobs.ts';
export type { ProgressEvent } from './routes/events.ts';
