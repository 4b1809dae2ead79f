import { existsSync, readdirSync } from 'node:fs';
import test from 'ava';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { longattn } from '../support/cli.ts';
import { localBytes, oddInputs, startService, until, type Service } from '../queue/support.ts';
import { startS3 } from './support.ts';

const BUCKET = 'longattn-test';

function jobFlags(r: { q: string; k: string; v: string }): string[] {
  return ['--q', r.q, '--k', r.k, '--v', r.v, '--causal', '--backend', 'js', '--block-q', '64', '--block-k', '128'];
}

test.serial(
  '--blobs s3://bucket/prefix: two worker processes and a reducer give runLocal’s bits; result and cancel leave the bucket empty',
  async (t) => {
    const [redis, s3] = await Promise.all([startRedis(), startS3([BUCKET])]);
    Object.assign(process.env, s3.env); // the services below inherit it: each opens the bucket with its own client
    const inputs = oddInputs();
    const services: Service[] = [];
    try {
      const local = await localBytes(inputs);
      const blobs = `s3://${BUCKET}/jobs/a`;
      // Services open only the stores they are given (docs/limits.md): this bucket's prefix.
      services.push(
        await startService('worker', redis.url, ['--backend', 'js', '--blobs', blobs], 'cli'),
        await startService('worker', redis.url, ['--backend', 'js', '--blobs', blobs], 'cli'),
        await startService('reducer', redis.url, ['--blobs', blobs], 'cli'),
      );
      const request = inputs.request('s3');
      const run = await longattn([
        'run',
        ...jobFlags(request),
        '--out',
        request.out,
        '--lse',
        request.lse!,
        '--engine',
        'queue',
        '--redis',
        redis.url,
        '--blobs',
        blobs,
      ]);
      t.is(run.code, 0, run.stderr);
      t.true(inputs.read(request.out).equals(local.out), 'O');
      t.true(inputs.read(request.lse!).equals(local.lse), 'LSE');
      t.notRegex(run.stderr, /NodeVersionSupportWarning|AWS SDK/, 'the SDK’s Node-version warning stays out of the output');
      t.deepEqual(await s3.keys(BUCKET), [], 'the job’s objects were removed when its result was collected');
      const workerLogs = services.slice(0, 2).map((s) => s.log());
      t.true(
        workerLogs.every((log) => !/NodeVersionSupportWarning/.test(log)),
        workerLogs.join('\n'),
      );

      // Detached, collected by `result`; then a cancelled one.
      const detached = inputs.request('detached');
      const submitted = await longattn([
        'run',
        ...jobFlags(detached),
        '--out',
        detached.out,
        '--engine',
        'queue',
        '--redis',
        redis.url,
        '--blobs',
        blobs,
        '--detach',
      ]);
      t.is(submitted.code, 0, submitted.stderr);
      const id = submitted.stdout.trim();
      await until(
        'the detached job to finish',
        async () => {
          const r = await longattn(['status', id, '--redis', redis.url, '--blobs', blobs, '--json']);
          return (JSON.parse(r.stdout) as { state: string }).state === 'done' ? true : undefined;
        },
        120_000,
      );
      t.true(
        (await s3.keys(BUCKET)).some((k) => k.startsWith(`jobs/a/${id}/out/`)),
        'a finished job keeps its outputs in the bucket until `result`',
      );
      const collected = await longattn(['result', id, '--redis', redis.url, '--blobs', blobs, '--out', detached.out]);
      t.is(collected.code, 0, collected.stderr);
      t.true(inputs.read(detached.out).equals(local.out), 'O via result');
      t.deepEqual(await s3.keys(BUCKET), []);

      await Promise.all(services.splice(0).map((s) => s.stop()));
      const queued = inputs.request('queued');
      const second = await longattn([
        'run',
        ...jobFlags(queued),
        '--out',
        queued.out,
        '--engine',
        'queue',
        '--redis',
        redis.url,
        '--blobs',
        blobs,
        '--detach',
      ]);
      t.is(second.code, 0, second.stderr);
      t.true((await s3.keys(BUCKET)).length > 0, 'the inputs were uploaded');
      const cancelled = await longattn(['cancel', second.stdout.trim(), '--redis', redis.url, '--blobs', blobs]);
      t.is(cancelled.code, 0, cancelled.stderr);
      t.deepEqual(await s3.keys(BUCKET), [], 'cancel removed the job’s objects');
    } finally {
      await Promise.all(services.map((s) => s.kill()));
      await Promise.all([redis.close(), s3.close()]);
      inputs.cleanup();
    }
  },
);

test.serial(
  '--blobs s3://: a missing bucket, refused credentials, an unreachable endpoint → exit 2, one line naming the setting, no output',
  async (t) => {
    const [redis, s3] = await Promise.all([startRedis(), startS3([BUCKET])]);
    const inputs = oddInputs({ H: 1, Hk: 1, Sq: 8, Sk: 8, D: 4 });
    try {
      const request = inputs.request('bad');
      const run = (blobs: string, env: Record<string, string>) =>
        longattn(['run', ...jobFlags(request), '--out', request.out, '--engine', 'queue', '--redis', redis.url, '--blobs', blobs], {
          env: { ...s3.env, ...env },
        });
      const cases: [string, Record<string, string>, RegExp][] = [
        [
          `s3://no-such-bucket/x`,
          {},
          /^longattn: --blobs: bucket "no-such-bucket" of s3:\/\/no-such-bucket\/x does not exist at http:\/\/127\.0\.0\.1:\d+\n$/,
        ],
        [
          `s3://${BUCKET}/x`,
          { AWS_ACCESS_KEY_ID: 'NOT-A-KEY' },
          /^longattn: AWS_ACCESS_KEY_ID: credentials refused by http:\/\/127\.0\.0\.1:\d+ for bucket "longattn-test"/,
        ],
        [
          `s3://${BUCKET}/x`,
          { AWS_ENDPOINT_URL: 'http://127.0.0.1:1' },
          /^longattn: AWS_ENDPOINT_URL: cannot reach http:\/\/127\.0\.0\.1:1: [^\n]+\n$/,
        ],
        [
          `s3://${BUCKET}/x`,
          { AWS_ENDPOINT_URL: 'not a url' },
          /^longattn: AWS_ENDPOINT_URL: expected an http\(s\):\/\/host\[:port\] URL, got "not a url"\n$/,
        ],
        [`s3://Bad_Bucket/x`, {}, /^longattn: --blobs: expected an S3 bucket name \(3-63 of a-z 0-9 \. -\), got "Bad_Bucket"\n$/],
        [
          `s3://${BUCKET}/../etc`,
          {},
          /^longattn: --blobs: expected a prefix of \/-separated segments of \[A-Za-z0-9\._-\], got "\.\.\/etc"\n$/,
        ],
        [
          `s3://${BUCKET}/x`,
          { AWS_ENDPOINT_URL: '', AWS_REGION: '', AWS_DEFAULT_REGION: '' },
          /^longattn: AWS_REGION: s3:\/\/longattn-test needs the bucket's region/,
        ],
      ];
      for (const [blobs, env, expected] of cases) {
        const r = await run(blobs, env);
        t.is(r.code, 2, `${blobs} ${JSON.stringify(env)}: ${r.stderr}`);
        t.regex(r.stderr, expected);
        t.is(r.stderr.split('\n').length, 2, 'one line');
      }
      t.deepEqual(readdirSync(inputs.dir).sort(), ['k.npy', 'q.npy', 'v.npy'], 'no output written');
      t.deepEqual(await s3.keys(BUCKET), []);
      t.false(existsSync(request.out));
    } finally {
      await Promise.all([redis.close(), s3.close()]);
      inputs.cleanup();
    }
  },
);
