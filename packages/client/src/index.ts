// @longattn/client: the typed SDK of the longattn HTTP API.
export { LongattnClient } from './client.ts';
export type { ClientOptions, JobEvent, TensorInput } from './client.ts';
export { ApiError } from './errors.ts';
export type { JobOptions, JobView, ProgressEvent } from '@longattn/engine/api';
