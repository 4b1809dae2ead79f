import type { S3Client } from '@aws-sdk/client-s3';
import { InputError } from '@longattn/tensor';
import type { S3Location } from './s3-location.ts';

/** Connections kept open per client (each kernel thread and service has its own): keep-alive, reused. */
export const MAX_SOCKETS = 32;

/** The SDK module, loaded once per process with its first client (the CLI does not pay for it otherwise). */
export type S3Sdk = typeof import('@aws-sdk/client-s3');

/**
 * Client-level middleware this store never needs, removed from every request's path
 * (docs/scaling.md, "Data movement", "The S3 client's own CPU"):
 *   loggerMiddleware             — logs through a configured logger (none is);
 *   recursionDetectionMiddleware — copies AWS Lambda's trace id into a header (not a Lambda);
 *   getUserAgentMiddleware       — builds the SDK's user-agent headers on every request;
 *   validateBucketNameMiddleware — the bucket name is checked once, by parseS3Location;
 *   addExpectContinueMiddleware  — `Expect: 100-continue` on big PUTs: a round trip before the body.
 * Retries, endpoint resolution, signing and the (required-only) checksums stay.
 */
export const REMOVED_MIDDLEWARE = [
  'loggerMiddleware',
  'recursionDetectionMiddleware',
  'getUserAgentMiddleware',
  'validateBucketNameMiddleware',
  'addExpectContinueMiddleware',
] as const;

/** Commands whose body is bytes we send: the ones whose SigV4 payload hash `unsignedPayload` skips. */
const BODY_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);

/**
 * Loads the SDK (without its Node-version warning), builds the client and checks the bucket
 * (HeadBucket): a missing bucket is an InputError naming `argument`, refused credentials one naming
 * AWS_ACCESS_KEY_ID, an unreachable endpoint one naming AWS_ENDPOINT_URL.
 */
export async function connectS3(location: string, where: S3Location, argument: string): Promise<{ client: S3Client; sdk: S3Sdk }> {
  // The SDK's documented switch for its multi-line NodeVersionSupportWarning (Node 20 is supported here).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const sdk = await import('@aws-sdk/client-s3');
  const { Agent: HttpAgent } = await import('node:http');
  const { Agent: HttpsAgent } = await import('node:https');
  const agent = { keepAlive: true, maxSockets: MAX_SOCKETS };
  const client = new sdk.S3Client({
    region: where.region,
    ...(where.endpoint ? { endpoint: where.endpoint, forcePathStyle: true } : {}),
    // Connections stay open and are reused (no TCP handshake per block), at most MAX_SOCKETS at once.
    requestHandler: { httpAgent: new HttpAgent(agent), httpsAgent: new HttpsAgent(agent) },
    // No CRC32 of every body we send or receive where S3 does not require one (TLS and TCP check the
    // bytes in flight; a multipart upload's DeleteObjects still gets its required checksum).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Each command class's middleware chain is resolved (the stack cloned, sorted, wrapped) once per
    // client instead of on every send: nothing here changes a command's stack after its first send.
    cacheMiddleware: true,
  });
  for (const name of REMOVED_MIDDLEWARE) client.middlewareStack.remove(name);
  if (where.unsignedPayload) {
    // SigV4 signs the body's SHA-256 unless `x-amz-content-sha256` already says UNSIGNED-PAYLOAD
    // (S3 accepts it on every request); only where nothing between us and the store can alter the
    // bytes unseen: TLS, or an endpoint on this machine (parseS3Location decides).
    client.middlewareStack.add(
      (next, context) => (args) => {
        if (BODY_COMMANDS.has(context.commandName ?? '')) {
          (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        }
        return next(args);
      },
      { step: 'build', name: 'longattnUnsignedPayload' },
    );
  }
  try {
    await client.send(new sdk.HeadBucketCommand({ Bucket: where.bucket }));
  } catch (error) {
    client.destroy();
    throw explain(error, location, where, argument);
  }
  return { client, sdk };
}

/** An SDK error at the bucket check as a one-line InputError naming the setting at fault (others unchanged). */
function explain(error: unknown, location: string, where: S3Location, argument: string): unknown {
  const e = error as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const at = where.endpoint ?? `AWS region ${where.region}`;
  if (status === 404 || e.name === 'NoSuchBucket' || e.name === 'NotFound') {
    return new InputError(argument, `bucket ${JSON.stringify(where.bucket)} of ${location} does not exist at ${at}`);
  }
  if (status === 403 || status === 401 || /Credential|AccessKey|Signature|AccessDenied|Forbidden/.test(e.name ?? '')) {
    return new InputError(
      'AWS_ACCESS_KEY_ID',
      `credentials refused by ${at} for bucket ${JSON.stringify(where.bucket)} (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)`,
    );
  }
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET/.test(`${e.code ?? ''} ${e.name ?? ''} ${e.message ?? ''}`)) {
    return new InputError(where.endpoint ? 'AWS_ENDPOINT_URL' : argument, `cannot reach ${at}: ${firstLine(e.message)}`);
  }
  return error;
}

const firstLine = (text = '') => text.split('\n')[0];
