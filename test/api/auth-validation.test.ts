import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { connectRedis } from '@longattn/engine/queue';
import { writeSafetensors, writeTensor } from '@longattn/tensor';
import { oddInputs, type Inputs } from '../queue/support.ts';
import { randomTensor } from '../support/random.ts';
import { ADMIN_KEY, authed, jobForm, KEYS, ODD_OPTIONS, startApi, startCluster, type Cluster } from './support.ts';

const test = anyTest as TestFn<{ cluster: Cluster; inputs: Inputs; job: string }>;

/** An .npy file of int32 zeros: a dtype the API must refuse. */
function int32Npy(path: string, shape: number[]): void {
  let header = `{'descr': '<i4', 'fortran_order': False, 'shape': (${shape.join(', ')},), }`;
  header += `${' '.repeat(63 - ((10 + header.length) % 64))}\n`;
  const prefix = Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 255, header.length >> 8]);
  writeFileSync(path, Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.alloc(shape.reduce((a, b) => a * b) * 4)]));
}

test.before(async (t) => {
  const cluster = await startCluster({ apiArgs: ['--log-level', 'info'] });
  const inputs = oddInputs();
  const form = await jobForm({
    options: JSON.stringify(ODD_OPTIONS),
    q: join(inputs.dir, 'q.npy'),
    k: join(inputs.dir, 'k.npy'),
    v: join(inputs.dir, 'v.npy'),
  });
  const response = await fetch(`${cluster.api.url}/v1/jobs`, authed(KEYS.acme, { method: 'POST', body: form }));
  const { id } = (await response.json()) as { id: string };
  t.context = { cluster, inputs, job: id };
});

test.after.always(async (t) => {
  await t.context.cluster?.close();
  t.context.inputs?.cleanup();
});

const files = (inputs: Inputs) => ({ q: join(inputs.dir, 'q.npy'), k: join(inputs.dir, 'k.npy'), v: join(inputs.dir, 'v.npy') });

test.serial('no key or a wrong key: 401 on every /v1 route', async (t) => {
  const { cluster, job } = t.context;
  const routes: [string, string][] = [
    ['GET', '/v1/jobs'],
    ['POST', '/v1/jobs'],
    ['GET', `/v1/jobs/${job}`],
    ['GET', `/v1/jobs/${job}/events`],
    ['DELETE', `/v1/jobs/${job}`],
    ['GET', `/v1/jobs/${job}/result/out`],
  ];
  for (const [method, path] of routes) {
    const none = await fetch(`${cluster.api.url}${path}`, { method });
    t.is(none.status, 401, `${method} ${path} without a key`);
    t.regex(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    const wrong = await fetch(`${cluster.api.url}${path}`, authed(`${KEYS.acme}x`, { method }));
    t.is(wrong.status, 401, `${method} ${path} with a wrong key`);
    const prefix = await fetch(`${cluster.api.url}${path}`, authed(KEYS.acme.slice(0, -1), { method }));
    t.is(prefix.status, 401, `${method} ${path} with a prefix of a key`);
  }
});

test.serial('another tenant’s job: 404 on every job route, and its job is untouched', async (t) => {
  const { cluster, job } = t.context;
  for (const [method, path] of [
    ['GET', `/v1/jobs/${job}`],
    ['GET', `/v1/jobs/${job}/events`],
    ['DELETE', `/v1/jobs/${job}`],
    ['GET', `/v1/jobs/${job}/result/out`],
    ['GET', `/v1/jobs/${job}/result/lse`],
    ['GET', `/v1/jobs/${job}/result/report`],
  ] as const) {
    const response = await fetch(`${cluster.api.url}${path}`, authed(KEYS.other, { method }));
    t.is(response.status, 404, `${method} ${path}`);
  }
  const list = (await (await fetch(`${cluster.api.url}/v1/jobs`, authed(KEYS.other))).json()) as { jobs: unknown[]; total: number };
  t.deepEqual(list, { jobs: [], total: 0 });
  // Ids that are not job ids (a key pattern, a path) are just not found.
  for (const bad of ['*', '..%2F..%2Fetc', 'la-1-2%3Ax']) {
    t.is((await fetch(`${cluster.api.url}/v1/jobs/${bad}`, authed(KEYS.acme))).status, 404, bad);
  }
  const view = (await (await fetch(`${cluster.api.url}/v1/jobs/${job}`, authed(KEYS.acme))).json()) as { state: string };
  t.not(view.state, 'cancelled');
});

test.serial('400 naming the field: bad JSON, unknown option, bad values, missing part, wrong dtype, mismatched shapes', async (t) => {
  const { cluster, inputs } = t.context;
  int32Npy(join(inputs.dir, 'int.npy'), [4, 300, 24]);
  writeTensor(join(inputs.dir, 'k-d16.npy'), [2, 517, 16], randomTensor(2 * 517 * 16, 5));
  const ok = JSON.stringify(ODD_OPTIONS);
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ options: '{"causal": tru', ...files(inputs) }, 'options', /^options: not valid JSON/],
    [{ options: '{"causal": true, "sliding": 3}', ...files(inputs) }, 'options.sliding', /unknown option/],
    [{ options: '{"window": [5]}', ...files(inputs) }, 'options.window', /^options\.window: /],
    [{ options: '{"kind": "train"}', ...files(inputs) }, 'options.kind', /^options\.kind: /],
    [{ options: '{"kind": "layer"}', ...files(inputs) }, 'options.heads', /required for kind "layer"/],
    [{ options: '{"blockQ": 0}', ...files(inputs) }, 'options.blockQ', /^options\.blockQ: /],
    [{ options: ok, q: files(inputs).q, k: files(inputs).k }, 'v', /^v: missing part/],
    [{ q: files(inputs).q, k: files(inputs).k, v: files(inputs).v }, 'options', /^options: missing part/],
    [{ options: ok, ...files(inputs), q: join(inputs.dir, 'int.npy') }, 'q', /^q: dtype '<i4' is not supported/],
    [{ options: ok, ...files(inputs), k: join(inputs.dir, 'k-d16.npy') }, 'k', /^k: /],
  ];
  for (const [parts, field, message] of cases) {
    const response = await fetch(`${cluster.api.url}/v1/jobs`, authed(KEYS.acme, { method: 'POST', body: await jobForm(parts) }));
    const body = (await response.json()) as { field: string; message: string };
    t.is(response.status, 400, `${field}: ${body.message}`);
    t.is(body.field, field);
    t.regex(body.message, message);
    t.false(body.message.includes(inputs.dir) || body.message.includes('longattn-upload'), `no server path in "${body.message}"`);
  }
  const list = await fetch(`${cluster.api.url}/v1/jobs?limit=1000`, authed(KEYS.acme));
  t.is(list.status, 400);
  t.regex(((await list.json()) as { message: string }).message, /limit/);
  const total = ((await (await fetch(`${cluster.api.url}/v1/jobs`, authed(KEYS.acme))).json()) as { total: number }).total;
  t.is(total, 1, 'no refused upload became a job');
});

test.serial('413 past the upload cap, with nothing left in the blob store or Redis', async (t) => {
  const { cluster, inputs } = t.context;
  const capped = await startApi(cluster.redis.url, cluster.blobs, ['--log-level', 'warn', '--upload-cap', '100000']);
  const redis = connectRedis(cluster.redis.url);
  try {
    // The job of test.before may still be running: count only what a new job would add.
    const jobKeys = async () => (await redis.keys('{longattn}:job:*')).concat(await redis.keys('{longattn}:api:job:*')).sort();
    const before = { blobs: new Set(cluster.blobFiles().map((f) => f.split('/')[0])), keys: await jobKeys() };
    const big = join(inputs.dir, 'big.npy');
    writeTensor(big, [4, 3000, 24], randomTensor(4 * 3000 * 24, 9)); // 1.15 MB
    const response = await fetch(
      `${capped.url}/v1/jobs`,
      authed(KEYS.acme, {
        method: 'POST',
        body: await jobForm({ options: JSON.stringify(ODD_OPTIONS), q: big, k: files(inputs).k, v: files(inputs).v }),
      }),
    );
    t.is(response.status, 413);
    t.regex(((await response.json()) as { message: string }).message, /100000-byte cap/);
    t.deepEqual(
      cluster.blobFiles().filter((f) => !before.blobs.has(f.split('/')[0])),
      [],
      'no blob of a new job',
    );
    t.deepEqual(
      (await jobKeys()).filter((k) => !before.keys.includes(k)),
      [],
      'no record of a new job',
    );
  } finally {
    redis.disconnect();
    await capped.stop();
  }
});

test.serial('admin board behind the admin key; keys never logged', async (t) => {
  const { cluster } = t.context;
  t.is((await fetch(`${cluster.api.url}/admin/queues`)).status, 401);
  t.is((await fetch(`${cluster.api.url}/admin/queues`, authed(KEYS.acme))).status, 401, 'a tenant key is not the admin key');
  const board = await fetch(`${cluster.api.url}/admin/queues`, authed(ADMIN_KEY));
  t.is(board.status, 200);
  t.regex(await board.text(), /<html/i);
  const basic = `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}`;
  t.is((await fetch(`${cluster.api.url}/admin/queues/api/queues`, { headers: { authorization: basic } })).status, 200);
  const log = cluster.api.log();
  t.regex(log, /incoming request/, 'requests were logged');
  for (const key of [KEYS.acme, KEYS.other, ADMIN_KEY]) t.false(log.includes(key), 'no key in the log');
});

test.serial('a wrong dtype fails fast: the 400 comes while the client is still sending', async (t) => {
  const { cluster } = t.context;
  const { request } = await import('node:http');
  const boundary = 'longattn-test-boundary';
  let header = "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000, 64), }";
  header += `${' '.repeat(63 - ((10 + header.length) % 64))}\n`;
  const npyHead = Buffer.concat([
    Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 255, header.length >> 8]),
    Buffer.from(header),
  ]);
  const head = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="options"\r\n\r\n${JSON.stringify(ODD_OPTIONS)}\r\n`),
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="q"; filename="q.npy"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    npyHead,
    Buffer.alloc(1 << 20),
  ]);
  const url = new URL(`${cluster.api.url}/v1/jobs`);
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.acme}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
      },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode!, body });
        });
      },
    );
    req.on('error', reject);
    req.write(head); // 512 MB announced, 1 MB sent, the request never ends: only a fast failure answers
  });
  t.is(answer.status, 400);
  t.regex(JSON.parse(answer.body).message, /^q: dtype '<i8' is not supported/);
});

test.serial(
  '.safetensors parts: the tensor named in options.tensors (bf16 here); several tensors and no name → 400 naming the part',
  async (t) => {
    const { cluster, inputs } = t.context;
    const st = join(inputs.dir, 'qk.safetensors');
    writeSafetensors(st, {
      'layers.0.q': { shape: [4, 300, 24], data: randomTensor(4 * 300 * 24, 31), dtype: 'bf16' },
      'layers.0.k': { shape: [2, 517, 24], data: randomTensor(2 * 517 * 24, 32) },
    });
    const named = JSON.stringify({ ...ODD_OPTIONS, tensors: { q: 'layers.0.q', k: 'layers.0.k' } });
    const ok = await fetch(
      `${cluster.api.url}/v1/jobs`,
      authed(KEYS.acme, { method: 'POST', body: await jobForm({ options: named, q: st, k: st, v: files(inputs).v }) }),
    );
    t.is(ok.status, 201, await ok.clone().text());
    const { id } = (await ok.json()) as { id: string };
    const view = (await (await fetch(`${cluster.api.url}/v1/jobs/${id}`, authed(KEYS.acme))).json()) as { shape: object };
    t.deepEqual(view.shape, { B: 1, H: 4, Hk: 2, Sq: 300, Sk: 517, D: 24 });
    const unnamed = await fetch(
      `${cluster.api.url}/v1/jobs`,
      authed(KEYS.acme, {
        method: 'POST',
        body: await jobForm({ options: JSON.stringify(ODD_OPTIONS), q: st, k: files(inputs).k, v: files(inputs).v }),
      }),
    );
    t.is(unnamed.status, 400);
    t.regex(((await unnamed.json()) as { message: string }).message, /^q: \.safetensors holds 2 tensors; name one in options\.tensors\.q/);
    await fetch(`${cluster.api.url}/v1/jobs/${id}`, authed(KEYS.acme, { method: 'DELETE' }));
  },
);
