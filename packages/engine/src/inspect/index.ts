// Attention patterns (`longattn inspect`, docs/contracts.md): exact statistics from each row's LSE, never the S×S matrix.
export { runInspect, inspectSettings } from './run-inspect.ts';
export type { InspectRunOptions } from './run-inspect.ts';
export type { InspectReport, InspectRequest, InspectResult } from './request.ts';
export type { HeadReport } from './report.ts';
export type { TopRow } from './chunk.ts';
export { CHUNK_ROWS } from './settings.ts';
