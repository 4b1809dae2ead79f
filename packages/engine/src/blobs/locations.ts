import { isAbsolute, resolve } from 'node:path';
import { InputError } from '@longattn/tensor';
import { excerpt } from '../errors.ts';

/**
 * A store location in its one spelling: `redis` (the queue's own Redis), a `redis://` or
 * `rediss://` URL as given, or `fs:` + the resolved absolute directory (`fs:DIR`, `/DIR`).
 * InputError naming `argument` for anything else.
 */
export function canonicalLocation(location: string, argument = '--blobs'): string {
  if (location === 'redis' || /^rediss?:\/\/\S+$/.test(location)) return location;
  if (location.startsWith('fs:') && location.length > 3) return `fs:${resolve(location.slice(3))}`;
  if (isAbsolute(location)) return `fs:${resolve(location)}`;
  if (/^s3:\/\/\S+$/.test(location)) return location;
  throw new InputError(
    argument,
    `expected redis, redis://host:port, fs:DIR, s3://bucket/prefix or an absolute path, got ${excerpt(location)}`,
  );
}

/** `--blobs A,B` / LONGATTN_BLOBS: comma-separated locations, canonical. */
export function parseLocations(text: string | undefined, argument = '--blobs'): string[] {
  return (text ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => canonicalLocation(part, argument));
}

/**
 * The blob stores a process may open for a job: the queue's own Redis (`redis`) and the
 * locations it was given (`--blobs`, LONGATTN_BLOBS), plus those it submitted to itself. A
 * manifest is read back from Redis, so its `blobs` is never trusted to choose a directory or a
 * server on its own: a planted `fs:/home/you` is refused here before anything opens it.
 */
export class BlobLocations {
  private readonly allowed: Set<string>;

  constructor(given: readonly string[] = []) {
    this.allowed = new Set(['redis', ...given.map((g) => canonicalLocation(g))]);
  }

  add(location: string): void {
    this.allowed.add(canonicalLocation(location));
  }

  /** The location when this process may open it; else InputError(`--blobs`) saying how to allow it. */
  check(location: string, job: string): string {
    let canonical: string | undefined;
    try {
      canonical = canonicalLocation(location);
    } catch {}
    if (canonical !== undefined && this.allowed.has(canonical)) return canonical;
    throw new InputError(
      '--blobs',
      `job ${job} keeps its bytes in ${excerpt(location)}, which this process was not given (allowed: ${[...this.allowed].join(', ')}; ` +
        'add it with --blobs or LONGATTN_BLOBS)',
    );
  }

  list(): string[] {
    return [...this.allowed];
  }
}
