import { isAbsolute, resolve } from 'node:path';
import { InputError } from '@longattn/tensor';
import { connectRedis } from '../queue/connection.ts';
import type { BlobStore } from './blob-store.ts';
import { FsBlobStore } from './fs-store.ts';
import { RedisBlobStore } from './redis-store.ts';
import { parseS3Location } from './s3-location.ts';
import { S3BlobStore } from './s3-store.ts';

/**
 * Opens a blob store by location:
 *   `redis`            — the queue's own Redis (`queueRedis`), the default;
 *   `redis://host:port` — another Redis;
 *   `fs:/dir` or `/dir` — a directory (a shared volume at the same path on every machine);
 *   `s3://bucket/prefix` — an S3-compatible bucket, with the AWS environment (s3-location.ts).
 */
export function openBlobStore(location: string, queueRedis: string, argument = '--blobs'): BlobStore {
  if (location === 'redis') return new RedisBlobStore(connectRedis(queueRedis), 'redis', { ownsConnection: true });
  if (/^rediss?:\/\//.test(location)) return new RedisBlobStore(connectRedis(location), location, { ownsConnection: true });
  if (location.startsWith('fs:') && location.length > 3) return new FsBlobStore(resolve(location.slice(3)));
  if (isAbsolute(location)) return new FsBlobStore(location);
  if (location.startsWith('s3://')) return new S3BlobStore(location, parseS3Location(location, argument), argument);
  throw new InputError(
    argument,
    `expected redis, redis://host:port, fs:DIR, s3://bucket/prefix or an absolute path, got ${JSON.stringify(location)}`,
  );
}
