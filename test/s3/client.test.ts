import { createHash } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { parseS3Location, S3BlobStore } from '@longattn/engine/queue';
import { startS3 } from './support.ts';

const BUCKET = 'longattn-client';

/** What reached the server: method, path and headers of every request. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/**
 * A pass-through HTTP proxy on a free loopback port in front of a real s3rver, recording every
 * request's headers (the signature covers the Host header, which it forwards unchanged).
 */
async function recordingProxy(target: string): Promise<{ endpoint: string; seen: Seen[]; close(): Promise<void> }> {
  const to = new URL(target);
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, url: decodeURIComponent(req.url!), headers: req.headers });
    // agent: false — no kept-alive connection to s3rver outlives the test (it would hold s3rver's close).
    const upstream = request(
      { agent: false, host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (reply) => {
        res.writeHead(reply.statusCode!, reply.headers);
        reply.pipe(res);
      },
    );
    upstream.on('error', (error) => res.destroy(error));
    req.pipe(upstream);
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise((closed) => {
        server.close(() => closed());
        server.closeAllConnections();
      }),
  };
}

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

test('parseS3Location: PUT bodies go unsigned only over TLS or to this machine', (t) => {
  const unsigned = (endpoint?: string) =>
    parseS3Location('s3://b-1/p', '--blobs', { AWS_REGION: 'eu-west-1', ...(endpoint ? { AWS_ENDPOINT_URL: endpoint } : {}) })
      .unsignedPayload;
  t.true(unsigned(), 'AWS itself (https)');
  t.true(unsigned('https://minio.example:9000'));
  t.true(unsigned('http://127.0.0.1:9000'));
  t.true(unsigned('http://127.4.5.6'));
  t.true(unsigned('http://localhost:4569'));
  t.true(unsigned('http://[::1]:9000/'));
  t.false(unsigned('http://minio:9000'), 'plain http across a network');
  t.false(unsigned('http://10.0.0.5:9000'));
  t.false(unsigned('http://127.0.0.1.example.com'));
});

test('S3 client: no user-agent, trace or Expect headers; PUT payload unsigned on loopback, hashed otherwise; same bytes either way', async (t) => {
  const s3 = await startS3([BUCKET]);
  const proxy = await recordingProxy(s3.endpoint);
  Object.assign(process.env, s3.env); // credentials, for the SDK's chain
  const env = { ...s3.env, AWS_ENDPOINT_URL: proxy.endpoint };
  const location = `s3://${BUCKET}/c`;
  const where = parseS3Location(location, '--blobs', env);
  t.true(where.unsignedPayload);
  const stores = [new S3BlobStore(location, where), new S3BlobStore(location, { ...where, unsignedPayload: false })];
  try {
    // 3 MiB: past the SDK's 2 MiB threshold for `Expect: 100-continue` (a round trip before the body).
    const body = bytes((3 << 20) + 5, 7);
    for (const [i, store] of stores.entries()) {
      proxy.seen.length = 0;
      await store.write(`j${i}/out/o`, 0, body);
      await store.seal(`j${i}/out/o`, { size: body.byteLength });
      const got = await store.read(`j${i}/out/o`, 1, body.byteLength - 1);
      t.true(Buffer.from(got).equals(Buffer.from(body.subarray(1))), `store ${i}: bytes read back`);
      const put = proxy.seen.find((r) => r.method === 'PUT' && r.url.includes('!w/'));
      t.truthy(put, `store ${i}: the part's PUT reached the server`);
      t.is(put!.headers['x-amz-content-sha256'], i === 0 ? 'UNSIGNED-PAYLOAD' : sha256(body), `store ${i}: payload hash`);
      // Still signed (s3rver 3.7 does not check V4 signatures: AWS and MinIO do, over the same headers).
      t.regex(
        put!.headers.authorization ?? '',
        /^AWS4-HMAC-SHA256 .*SignedHeaders=[^,]*x-amz-content-sha256/,
        'still signed, over the hash header',
      );
      for (const r of proxy.seen) {
        t.is(r.headers['x-amz-user-agent'], undefined, `${r.method} ${r.url}: no SDK user agent`);
        t.false(/aws-sdk/i.test(r.headers['user-agent'] ?? ''), `${r.method} ${r.url}: no SDK user agent`);
        t.is(r.headers.expect, undefined, `${r.method} ${r.url}: no Expect`);
        t.is(r.headers['x-amzn-trace-id'], undefined);
      }
    }
  } finally {
    for (const [i, store] of stores.entries()) {
      await store.deletePrefix(`j${i}/`);
      await store.close();
    }
    t.deepEqual(await s3.keys(BUCKET), []);
    await proxy.close();
    await s3.close();
  }
});

test('S3BlobStore: requests per read — the index once per process, one ranged GET per part overlapped, no HEAD', async (t) => {
  const s3 = await startS3([BUCKET]);
  Object.assign(process.env, s3.env);
  const location = `s3://${BUCKET}/r`;
  const where = parseS3Location(location, '--blobs', s3.env);
  const writer = new S3BlobStore(location, where);
  const reader = new S3BlobStore(location, where);
  try {
    const parts = [bytes(1000, 1), bytes(3001, 2), bytes(777, 3)];
    let at = 0;
    for (const part of parts) {
      await writer.write('j/in/k', at, part);
      at += part.byteLength;
    }
    await writer.seal('j/in/k', { size: at });
    t.deepEqual(writer.requests, { get: 0, put: 4, head: 0, list: 1, delete: 0 }, 'three parts and the index; one listing');
    await reader.read('j/in/k', 900, 200); // parts 0 and 1
    t.deepEqual(reader.requests, { get: 3, put: 0, head: 0, list: 0, delete: 0 }, 'the index, then one GET per part');
    await reader.read('j/in/k', 1000, 3001); // part 1 exactly
    await reader.read('j/in/k', 4500, 278); // part 2, past the end: zeros
    t.deepEqual(reader.requests, { get: 5, put: 0, head: 0, list: 0, delete: 0 }, 'the index is cached');
    await reader.deletePrefix('j/');
    t.is(reader.requests.delete, 1, 'one DeleteObjects for the whole prefix');
  } finally {
    await writer.close();
    await reader.close();
    t.deepEqual(await s3.keys(BUCKET), []);
    await s3.close();
  }
});
