import type { AttentionSpec, Plan } from '@longattn/attention';
import { BadManifestError } from '../errors.ts';
import type { InspectManifest } from './inspect-manifest.ts';
import type { LayerManifest } from './layer-manifest.ts';
import { checkManifest } from './manifest-schema.ts';

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
  /**
   * The backend every tile runs on: a name (`ort`, `gpujs:headlessgl`), never `auto` — submit
   * resolves `auto` once per job (what the submitter's machine picks), so a job's bits never
   * depend on which worker took which tile.
   */
  backend: string;
  /** Blob store location (see openBlobStore). */
  blobs: string;
  tileCount: number;
  skippedTiles: number;
  qBlockCount: number;
  flops: number;
  tileJobs: number;
  reduceJobs: number;
  /** Inspect jobs only: the statistics pass (after the attention flow's LSE, or on an uploaded --lse). */
  inspect?: InspectManifest;
  /** Layer jobs only: projections before the attention flow and o_proj after it (docs/flow.md, "Layers on the queue"). */
  layer?: LayerManifest;
}

/**
 * The fields every job kind's manifest shares, from its plan and the tile jobs batchPlan grouped
 * (`groups`); `attention: false` for a job with no attention flow (inspect given its LSE): no
 * tiles, no FLOPs. Callers add their kind's part (`inspect`, `layer`).
 */
export function planManifest(
  job: Pick<JobManifest, 'id' | 'spec' | 'qShape' | 'blockQ' | 'blockK' | 'backend' | 'blobs'>,
  plan: Pick<Plan, 'tileCount' | 'skippedTiles' | 'qBlockCount' | 'flops'>,
  groups: readonly { tileJobs: readonly unknown[] }[],
  attention = true,
): JobManifest {
  return {
    version: 1,
    ...job,
    tileCount: attention ? plan.tileCount : 0,
    skippedTiles: attention ? plan.skippedTiles : 0,
    qBlockCount: plan.qBlockCount,
    flops: attention ? plan.flops : 0,
    tileJobs: groups.reduce((n, g) => n + g.tileJobs.length, 0),
    reduceJobs: groups.length,
  };
}

/** JSON has no Infinity: windows travel with -1 for an unbounded side (the CLI's spelling). */
export function encodeManifest(m: JobManifest): string {
  const side = (x: number) => (x === Infinity ? -1 : x);
  return JSON.stringify({ ...m, spec: { ...m.spec, window: { left: side(m.spec.window.left), right: side(m.spec.window.right) } } });
}

/**
 * The manifest of job `id` as stored in its hash, checked against the schema (manifest-schema.ts):
 * BadManifestError for anything this build did not write for that id.
 */
export function decodeManifest(text: string, id: string): JobManifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BadManifestError(`job ${id}: its record in Redis is not a valid manifest (not JSON)`);
  }
  const m = checkManifest(parsed, id) as unknown as JobManifest;
  const side = (x: number) => (x === -1 ? Infinity : x);
  return { ...m, spec: { ...m.spec, window: { left: side(m.spec.window.left), right: side(m.spec.window.right) } } };
}

/** Life of a queued job as `status` reports it. */
export type JobState = 'uploading' | 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export function isFinished(state: JobState): boolean {
  return state === 'done' || state === 'failed' || state === 'cancelled';
}
