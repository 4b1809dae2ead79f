import type { Redis } from 'ioredis';
import type { BlobLocations } from '../blobs/locations.ts';
import { openBlobStore } from '../blobs/open.ts';
import { isJobId, jobKeys } from './names.ts';

/**
 * A job's blobs live as long as its record: records expire (QUEUE_DEFAULTS.keepUnfinishedSeconds
 * from submission, keepFinishedSeconds once done, failed or cancelled), and reducers sweep every
 * store they were given (the queue's Redis and their --blobs) at start and every interval,
 * deleting the blobs of each job whose record is gone, failed or cancelled. Only names that are
 * job ids are looked at, and only `JOB/` is deleted, inside the store.
 * Returns how many jobs' blobs were deleted.
 */
export async function sweepOnce(redis: Redis, queueUrl: string, locations: BlobLocations): Promise<number> {
  let swept = 0;
  for (const location of locations.list()) {
    const store = openBlobStore(location, queueUrl);
    try {
      for (const name of await store.topNames()) {
        if (!isJobId(name)) continue;
        const state = await redis.hget(jobKeys.hash(name), 'state');
        if (state !== null && state !== 'failed' && state !== 'cancelled') continue;
        await store.deletePrefix(`${name}/`);
        swept++;
      }
    } finally {
      await store.close();
    }
  }
  return swept;
}

/** Runs sweepOnce now and every `intervalMs` until stopped; failures are logged and retried next time. */
export function startSweeper(
  redis: Redis,
  queueUrl: string,
  locations: BlobLocations,
  intervalMs: number,
  log: (line: string) => void,
  service: string,
): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const sweep = () => {
    running = running.then(async () => {
      try {
        const swept = await sweepOnce(redis, queueUrl, locations);
        if (swept > 0) log(`${service}: swept the blobs of ${swept} expired, failed or cancelled job${swept === 1 ? '' : 's'}`);
      } catch (error) {
        log(`${service}: sweep failed: ${(error as Error).message.split('\n')[0]}`);
      }
    });
  };
  sweep();
  const timer = setInterval(sweep, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
