import type { JobsOptions } from 'bullmq';
import { QUEUE_DEFAULTS } from './config.ts';

/** What every job of every flow gets: retries with exponential backoff, and sizeLimit against tensors in job data. */
const base = () => ({
  attempts: QUEUE_DEFAULTS.attempts,
  backoff: { type: 'exponential' as const, delay: QUEUE_DEFAULTS.backoffMs },
  sizeLimit: QUEUE_DEFAULTS.sizeLimitBytes,
});

/** A flow's root (finalise, inspect, layer-in, layer-out): kept keepFinishedSeconds once done or failed (status, result). */
export function rootOptions(jobId: string): JobsOptions {
  const kept = { age: QUEUE_DEFAULTS.keepFinishedSeconds };
  return { ...base(), jobId, removeOnComplete: kept, removeOnFail: kept };
}

/**
 * A flow's child (reduce, tile, chunk, project): one that fails for good fails its parent
 * (failParentOnFailure), so a root never waits forever; removed once done (its results live in
 * blobs), kept keepFinishedSeconds when failed.
 */
export function childOptions(jobId: string): JobsOptions {
  return {
    ...base(),
    jobId,
    failParentOnFailure: true,
    removeOnComplete: true,
    removeOnFail: { age: QUEUE_DEFAULTS.keepFinishedSeconds },
  };
}
