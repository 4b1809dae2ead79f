import type { AttentionSpec } from '@longattn/attention';

/**
 * What every process needs to know about a queued job, stored once in its hash (field
 * `manifest`) and cached by workers and reducers. With it they rebuild the same plan() as the
 * submitter, so jobs carry only indices into it.
 */
export interface JobManifest {
  version: 1;
  id: string;
  spec: AttentionSpec;
  /** Q's shape as given: O gets it; LSE is [B,H,Sq] with Q's leading dims dropped. */
  qShape: number[];
  blockQ: number;
  blockK: number;
  /** As requested: `auto` lets each worker use its own (--backend), a name forces that backend. */
  backend: string;
  /** Blob store location (see openBlobStore). */
  blobs: string;
  tileCount: number;
  skippedTiles: number;
  qBlockCount: number;
  flops: number;
  tileJobs: number;
  reduceJobs: number;
}

/** JSON has no Infinity: windows travel with -1 for an unbounded side (the CLI's spelling). */
export function encodeManifest(m: JobManifest): string {
  const side = (x: number) => (x === Infinity ? -1 : x);
  return JSON.stringify({ ...m, spec: { ...m.spec, window: { left: side(m.spec.window.left), right: side(m.spec.window.right) } } });
}

export function decodeManifest(text: string): JobManifest {
  const m = JSON.parse(text) as JobManifest;
  const side = (x: number) => (x === -1 ? Infinity : x);
  if (m.version !== 1) throw new Error(`job ${m.id}: manifest version ${String(m.version)} is not supported by this build`);
  return { ...m, spec: { ...m.spec, window: { left: side(m.spec.window.left), right: side(m.spec.window.right) } } };
}

/** Life of a queued job as `status` reports it. */
export type JobState = 'uploading' | 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export function isFinished(state: JobState): boolean {
  return state === 'done' || state === 'failed' || state === 'cancelled';
}
