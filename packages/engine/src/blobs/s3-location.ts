import { InputError } from '@longattn/tensor';
import { checkBlobName } from './blob-store.ts';

/**
 * Where an S3 blob store lives: `--blobs s3://bucket/prefix` plus the standard AWS environment
 * (read here once, by every process that opens the store, so workers use their own credentials):
 *   AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL — a custom endpoint (MinIO, Ceph, s3rver, GCS's S3
 *     interface); with one set, requests use path-style addressing (`endpoint/bucket/key`);
 *   AWS_REGION or AWS_DEFAULT_REGION — required for AWS itself; `us-east-1` with a custom endpoint;
 *   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN, profiles, instance roles):
 *     the SDK's own credential chain.
 */
export interface S3Location {
  bucket: string;
  /** Key prefix of every object, `''` or ending in `/`: `a/b/`. */
  prefix: string;
  endpoint?: string;
  region: string;
  /**
   * Whether PUT bodies go without their SHA-256 in the signature (`UNSIGNED-PAYLOAD`): true where
   * nothing between us and the store can change bytes unseen — AWS itself and https endpoints
   * (TLS), or an http endpoint on this machine (`localhost`, `127.x.x.x`, `[::1]`).
   */
  unsignedPayload: boolean;
}

/** Hosts of this machine: an http endpoint there carries bytes through no network. */
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** Whether an endpoint (none: AWS over https) carries bytes only over TLS or within this machine. */
export function bytesGuardedInFlight(endpoint: string | undefined): boolean {
  if (endpoint === undefined) return true;
  const url = new URL(endpoint);
  return url.protocol === 'https:' || LOOPBACK.test(url.hostname);
}

/** Bucket names as S3 accepts them (3–63 of lowercase letters, digits, `.`, `-`). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses `s3://bucket[/prefix]` and the AWS environment; errors name `argument` or the AWS variable. */
export function parseS3Location(location: string, argument: string, env: NodeJS.ProcessEnv = process.env): S3Location {
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(location);
  if (!match) throw new InputError(argument, `expected s3://bucket/prefix, got ${JSON.stringify(location)}`);
  const bucket = match[1]!;
  if (!BUCKET.test(bucket)) {
    throw new InputError(argument, `expected an S3 bucket name (3-63 of a-z 0-9 . -), got ${JSON.stringify(bucket)}`);
  }
  let prefix = match[2] ?? '';
  if (prefix !== '') {
    if (!prefix.endsWith('/')) prefix += '/';
    try {
      checkBlobName(prefix);
    } catch {
      throw new InputError(argument, `expected a prefix of /-separated segments of [A-Za-z0-9._-], got ${JSON.stringify(match[2])}`);
    }
  }
  const endpointVar = env.AWS_ENDPOINT_URL_S3 ? 'AWS_ENDPOINT_URL_S3' : 'AWS_ENDPOINT_URL';
  const endpoint = env[endpointVar] || undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+(\/\S*)?$/.test(endpoint)) {
    throw new InputError(endpointVar, `expected an http(s)://host[:port] URL, got ${JSON.stringify(endpoint)}`);
  }
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || (endpoint ? 'us-east-1' : undefined);
  if (!region) throw new InputError('AWS_REGION', `s3://${bucket} needs the bucket's region (or AWS_ENDPOINT_URL for another S3 service)`);
  return { bucket, prefix, region, unsignedPayload: bytesGuardedInFlight(endpoint), ...(endpoint ? { endpoint } : {}) };
}
