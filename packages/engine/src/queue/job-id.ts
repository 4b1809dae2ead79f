import { InputError } from '@longattn/tensor';
import { excerpt } from '../errors.ts';

/** Longest job id accepted anywhere (newJobId makes ~22 characters). */
export const MAX_JOB_ID_LENGTH = 64;

/** Job ids as newJobId makes them: `la-<time36>-<hex>`, at most MAX_JOB_ID_LENGTH characters. */
export function isJobId(id: unknown): id is string {
  return typeof id === 'string' && id.length <= MAX_JOB_ID_LENGTH && /^la-[0-9a-z]+-[0-9a-f]+$/.test(id);
}

/**
 * A job id from outside (CLI argument, API path, job data read back from Redis): returned when
 * it has newJobId's shape, else InputError naming `argument`, the value cut to 64 characters.
 * Every Redis key and blob name of a job is built from an id that passed here.
 */
export function checkJobId(id: unknown, argument = 'JOB'): string {
  if (isJobId(id)) return id;
  const shown = typeof id === 'string' ? excerpt(id) : String(id);
  throw new InputError(argument, `expected a job id like la-mabc123-0123456789, got ${shown}`);
}
