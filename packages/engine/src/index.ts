// The embedded engine. The queue engine (BullMQ, Redis, blob stores) is `@longattn/engine/queue`,
// so importing this entry never loads bullmq or ioredis.
export type { JobRequest, JobResult, Progress } from './job.ts';
export { openInputs } from './inputs.ts';
export type { JobInputs } from './inputs.ts';
export { JobOutput, JobOutputMemory } from './output.ts';
export { checkOutputPaths } from './output-paths.ts';
export type { InputRef, OutputPath } from './output-paths.ts';
export { arraySource, readerSource, WINDOW_BYTES } from './block-source.ts';
export type { BlockSource } from './block-source.ts';
export { computeQBlock } from './compute-block.ts';
export type { BlockOutputs } from './block-outputs.ts';
export { resolveBlocks } from './blocks.ts';
export { linearErrorReport, REPORT_ERROR_SEED, sampleRows } from './linear-error.ts';
export type { LinearErrorReport } from './linear-error.ts';
export { LOCAL_THREADS_MAX, runLocal, runLocalLse, type LseRequest } from './local/local-engine.ts';
export type { LocalRunOptions } from './local/local-engine.ts';
export { CHUNK_ROWS, inspectSettings, runInspect } from './inspect/index.ts';
export type { HeadReport, InspectReport, InspectRequest, InspectResult, InspectRunOptions, TopRow } from './inspect/index.ts';
export { runLayer, PROJECT_ROWS } from './layer/run-layer.ts';
export type { LayerRequest, LayerResult } from './layer/request.ts';
