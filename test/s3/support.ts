/**
 * An S3-protocol server (s3rver) for tests, in this process on a free port with its own temp
 * directory, plus the AWS environment that points the SDK (and spawned CLI processes) at it.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { freePort } from '../../scripts/redis-test-server.ts';

const OBJECT = '._S3rver_object';

export interface S3Server {
  endpoint: string;
  /** AWS_* variables for this server (s3rver's default credentials S3RVER/S3RVER). */
  env: Record<string, string>;
  /** Every object key in a bucket, read from the server's disk (the check that cleanup left it empty). */
  keys(bucket: string): Promise<string[]>;
  close(): Promise<void>;
}

export async function startS3(buckets: string[]): Promise<S3Server> {
  const directory = mkdtempSync(join(tmpdir(), 'longattn-s3rver-'));
  const port = await freePort();
  const server = new S3rver({
    port,
    address: '127.0.0.1',
    silent: !process.env.S3RVER_LOG,
    directory,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const env = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
  };
  return {
    endpoint,
    env,
    async keys(bucket) {
      // s3rver keeps each object as the file DIR/BUCKET/KEY._S3rver_object: read the disk, not through S3.
      const files = readdirSync(join(directory, bucket), { recursive: true, encoding: 'utf8' });
      return files.filter((f) => f.endsWith(OBJECT)).map((f) => f.slice(0, -OBJECT.length));
    },
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
