import { InputError, type Plan } from '@longattn/attention';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BlobStore } from '../blobs/blob-store.ts';
import type { BlobLocations } from '../blobs/locations.ts';
import { openBlobStore } from '../blobs/open.ts';
import { JobFailedError, JobGoneError } from '../errors.ts';
import { plannedWithinLimits, type PlanLimits } from '../limits.ts';
import { decodeManifest, type JobManifest } from './manifest.ts';
import { checkJobId, jobKeys } from './names.ts';
import { decline } from './service.ts';

/** A job as a worker or reducer sees it: its manifest, the (lazy) plan rebuilt from it, its blob store. */
export interface JobContext {
  manifest: JobManifest;
  plan: Plan;
  store: BlobStore;
}

/**
 * Per-process cache of job contexts (a few recent jobs) and of open blob stores (one per
 * location), so a tile job costs no manifest fetch or re-plan after the first. A manifest whose
 * plan breaks this process's limits (docs/limits.md) fails its job, never the process.
 */
export class JobContexts {
  private readonly jobs = new Map<string, Promise<JobContext>>();
  private readonly stores = new Map<string, BlobStore>();

  constructor(
    private readonly redis: Redis,
    private readonly redisUrl: string,
    /** The stores this process may open (its --blobs): a manifest naming another is refused. */
    private readonly locations: BlobLocations,
    private readonly limits: PlanLimits,
    private readonly keep = 8,
  ) {}

  get(id: string): Promise<JobContext> {
    let context = this.jobs.get(id);
    if (context) {
      this.jobs.delete(id);
      this.jobs.set(id, context); // most recent last
      return context;
    }
    context = this.load(id);
    context.catch(() => this.jobs.delete(id));
    this.jobs.set(id, context);
    while (this.jobs.size > this.keep) this.jobs.delete(this.jobs.keys().next().value!);
    return context;
  }

  /** Job ids, manifests and store locations are all checked before anything is opened or planned. */
  private async load(id: string): Promise<JobContext> {
    checkJobId(id, 'job');
    const text = await this.redis.hget(jobKeys.hash(id), 'manifest');
    if (text === null) throw new JobGoneError(`job ${id} no longer exists (cancelled or removed)`);
    const manifest = decodeManifest(text, id);
    const location = this.locations.check(manifest.blobs, id);
    let thePlan: Plan;
    try {
      thePlan = plannedWithinLimits(manifest.spec, { blockQ: manifest.blockQ, blockK: manifest.blockK }, this.limits, 'queue');
    } catch (error) {
      if (!(error instanceof InputError || error instanceof RangeError)) throw error;
      throw new JobFailedError(`job ${id}: its manifest is refused: ${error.message}`); // recorded: status says why
    }
    let store = this.stores.get(location);
    if (!store) {
      store = openBlobStore(location, this.redisUrl);
      this.stores.set(location, store);
    }
    return { manifest, plan: thePlan, store };
  }

  async close(): Promise<void> {
    await Promise.all([...this.stores.values()].map((s) => s.close()));
    this.stores.clear();
    this.jobs.clear();
  }
}

/**
 * The context of the job a queue job (tile or chunk) belongs to, for worker `worker`. When the job
 * names a blob store this worker was not given, the queue job is declined instead (handed back
 * for a worker that was; nothing was opened) — decline throws, so a return is always a context.
 */
export async function contextOrDecline(
  contexts: JobContexts,
  redis: Redis,
  job: Job<{ job: string }>,
  token: string | undefined,
  worker: string,
): Promise<JobContext> {
  try {
    return await contexts.get(job.data.job);
  } catch (error) {
    if (error instanceof InputError && error.argument === '--blobs') return decline(redis, job, token, worker, error.message.slice(9));
    throw error;
  }
}
