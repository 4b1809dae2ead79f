/**
 * The API's own Redis keys, beside the queue's (same `{longattn}` hash tag, so one Cluster slot).
 * Tenants and job ids are checked (isTenant, isJobId) before any key is built from them.
 */
export const apiKeys = {
  /** HASH: tenant, kind, options (JSON), createdAt, and the last state seen (state, finishedAt). */
  job: (id: string) => `{longattn}:api:job:${id}`,
  /** ZSET of a tenant's job ids, scored by creation time (ms). */
  tenant: (tenant: string) => `{longattn}:api:tenant:${tenant}`,
  /** ZSET of every tenant's job ids by creation time (/metrics). */
  all: '{longattn}:api:jobs',
};

/** Tenant names as keys files give them: safe inside a Redis key. */
export function isTenant(name: string): boolean {
  return /^[A-Za-z0-9_-]{1,64}$/.test(name);
}
