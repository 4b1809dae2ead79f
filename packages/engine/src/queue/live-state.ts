import type { Redis } from 'ioredis';
import { jobKeys } from './names.ts';

/** How long a job's state is trusted before it is read again: a cancel reaches workers within this. */
const STATE_TTL_MS = 500;

/** A job's state (hash field `state`, null when the job is gone), re-read at most every STATE_TTL_MS; the 64 most recent jobs. */
export class LiveStates {
  private readonly states = new Map<string, { state: string | null; at: number }>();

  constructor(private readonly redis: Redis) {}

  async get(jobId: string): Promise<string | null> {
    const known = this.states.get(jobId);
    if (known && Date.now() - known.at < STATE_TTL_MS) return known.state;
    const state = await this.redis.hget(jobKeys.hash(jobId), 'state');
    this.note(jobId, state);
    return state;
  }

  /** A state just read along with something else (a tile job's record returns it): trusted as a fresh get's. */
  note(jobId: string, state: string | null): void {
    this.states.delete(jobId);
    this.states.set(jobId, { state, at: Date.now() });
    if (this.states.size > 64) this.states.delete(this.states.keys().next().value!);
  }
}
