import { InputError } from '@longattn/tensor';
import { connectRedis } from '../queue/connection.ts';
import { QUEUE_DEFAULTS } from '../queue/config.ts';
import type { BlobStore } from './blob-store.ts';
import { FsBlobStore } from './fs-store.ts';
import { canonicalLocation } from './locations.ts';
import { RedisBlobStore } from './redis-store.ts';
import { parseS3Location } from './s3-location.ts';
import { S3BlobStore } from './s3-store.ts';

/**
 * Opens a blob store by location (canonicalLocation's forms):
 *   `redis`            — the queue's own Redis (`queueRedis`), the default;
 *   `redis://host:port` — another Redis;
 *   `fs:/dir` or `/dir` — a directory (a shared volume at the same path on every machine);
 *   `s3://bucket/prefix` — an S3-compatible bucket, with the AWS environment (s3-location.ts).
 * Redis stores' commands time out after QUEUE_DEFAULTS.commandTimeoutMs (a silent server is an
 * error, not a hang). Which locations a job may name is BlobLocations' call, made before this.
 */
export function openBlobStore(location: string, queueRedis: string, argument = '--blobs'): BlobStore {
  const canonical = canonicalLocation(location, argument);
  const timeouts = { commandTimeoutMs: QUEUE_DEFAULTS.commandTimeoutMs };
  if (canonical === 'redis') return new RedisBlobStore(connectRedis(queueRedis, timeouts), 'redis', { ownsConnection: true });
  if (canonical.startsWith('fs:')) return new FsBlobStore(canonical.slice(3));
  if (/^rediss?:\/\//.test(canonical)) {
    return new RedisBlobStore(connectRedis(canonical, { ...timeouts, argument }), canonical, { ownsConnection: true, url: canonical });
  }
  if (canonical.startsWith('s3://')) return new S3BlobStore(canonical, parseS3Location(canonical, argument), argument);
  throw new InputError(argument, `cannot open ${canonical}`);
}
