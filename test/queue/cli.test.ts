import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { freePort, startRedis } from '../../scripts/redis-test-server.ts';
import { longattn } from '../support/cli.ts';
import { localBytes, oddInputs, startService, until, type Service } from './support.ts';

function jobFlags(r: { q: string; k: string; v: string }): string[] {
  return ['--q', r.q, '--k', r.k, '--v', r.v, '--causal', '--backend', 'js', '--block-q', '64', '--block-k', '128'];
}

test('CLI batch: run --detach, status, worker/reducer subcommands, result, cancel', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const services: Service[] = [];
  try {
    const local = await localBytes(inputs);
    const request = inputs.request('queue');
    const submitted = await longattn([
      'run',
      ...jobFlags(request),
      '--out',
      request.out,
      '--engine',
      'queue',
      '--redis',
      redis.url,
      '--detach',
    ]);
    t.is(submitted.code, 0, submitted.stderr);
    const id = submitted.stdout.trim();
    t.regex(id, /^la-[0-9a-z]+-[0-9a-f]+$/);
    const queued = await longattn(['status', id, '--redis', redis.url]);
    t.is(queued.code, 0, queued.stderr);
    t.regex(queued.stdout, new RegExp(`^${id}  queued  0/\\d+ tiles`));

    services.push(
      await startService('worker', redis.url, ['--backend', 'js', '--concurrency', '2'], 'cli'),
      await startService('reducer', redis.url, [], 'cli'),
    );
    t.regex(services[0]!.log(), /backend js on cpu/, 'the worker logs its backend and device');
    const done = await until('the job to finish', async () => {
      const r = await longattn(['status', id, '--redis', redis.url, '--json']);
      const status = JSON.parse(r.stdout) as { state: string; progress: { doneTiles: number; totalTiles: number } };
      return status.state === 'done' ? status : undefined;
    });
    t.is(done.progress.doneTiles, done.progress.totalTiles);

    const collected = await longattn(['result', id, '--redis', redis.url, '--out', request.out, '--lse', request.lse!]);
    t.is(collected.code, 0, collected.stderr);
    t.true(inputs.read(request.out).equals(local.out), 'O');
    t.true(inputs.read(request.lse!).equals(local.lse), 'LSE');
    const gone = await longattn(['status', id, '--redis', redis.url]);
    t.is(gone.code, 2, 'collected jobs are removed');
    t.regex(gone.stderr, /^longattn: JOB: no job "la-/);

    // Cancel: a second job, stopped before its workers get to it all.
    await Promise.all(services.splice(0).map((s) => s.stop()));
    const second = await longattn([
      'run',
      ...jobFlags(request),
      '--out',
      request.out,
      '--engine',
      'queue',
      '--redis',
      redis.url,
      '--detach',
    ]);
    const other = second.stdout.trim();
    const cancelled = await longattn(['cancel', other, '--redis', redis.url]);
    t.is(cancelled.code, 0, cancelled.stderr);
    t.is(cancelled.stdout.trim(), `${other}: cancelled (was queued)`);
    const status = await longattn(['status', other, '--redis', redis.url]);
    t.regex(status.stdout, new RegExp(`^${other}  cancelled`));
    const refused = await longattn(['result', other, '--redis', redis.url, '--out', inputs.request('late').out]);
    t.is(refused.code, 1);
    t.regex(refused.stderr, /is cancelled; no result/);
    t.false(existsSync(inputs.request('late').out));
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
    inputs.cleanup();
  }
});

test('CLI: Redis unreachable → exit 2, one line naming --redis, no output', async (t) => {
  const inputs = oddInputs({ H: 1, Hk: 1, Sq: 8, Sk: 8, D: 4 });
  try {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const request = inputs.request('queue');
    for (const argv of [
      ['run', ...jobFlags(request), '--out', request.out, '--engine', 'queue', '--redis', url],
      ['status', 'la-x-1', '--redis', url],
      ['worker', '--redis', url],
    ]) {
      const r = await longattn(argv);
      t.is(r.code, 2, `${argv[0]}: ${r.stderr}`);
      t.regex(r.stderr, /^longattn: --redis: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: [^\n]+\n$/);
    }
    t.deepEqual(readdirSync(inputs.dir).sort(), ['k.npy', 'q.npy', 'v.npy']);
  } finally {
    inputs.cleanup();
  }
});

test('CLI: run --engine queue --blobs fs:DIR (or LONGATTN_BLOBS) keeps the job’s bytes there; a bad --blobs exits 2', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const services: Service[] = [];
  try {
    const local = await localBytes(inputs);
    const dir = join(inputs.dir, 'by-flag');
    const envDir = join(inputs.dir, 'by-env');
    // Services open only the blob stores they are given (a job's manifest cannot choose a directory).
    const given = ['--blobs', `fs:${dir},fs:${envDir}`];
    services.push(await startService('worker', redis.url, ['--backend', 'js', ...given]), await startService('reducer', redis.url, given));
    const request = inputs.request('flag');
    const byFlag = await longattn([
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
      `fs:${dir}`,
      '--quiet',
    ]);
    t.is(byFlag.code, 0, byFlag.stderr);
    t.true(inputs.read(request.out).equals(local.out), 'O');
    t.true(inputs.read(request.lse!).equals(local.lse), 'LSE');
    t.deepEqual(readdirSync(dir), [], 'the store was used, and emptied when the result was collected');

    const byEnv = inputs.request('env');
    const r = await longattn(['run', ...jobFlags(byEnv), '--out', byEnv.out, '--engine', 'queue', '--redis', redis.url, '--quiet'], {
      env: { LONGATTN_BLOBS: `fs:${envDir}` },
    });
    t.is(r.code, 0, r.stderr);
    t.true(inputs.read(byEnv.out).equals(local.out), 'O');
    t.true(existsSync(envDir), 'LONGATTN_BLOBS chose the store');

    const bad = await longattn([
      'run',
      ...jobFlags(byEnv),
      '--out',
      inputs.request('bad').out,
      '--engine',
      'queue',
      '--redis',
      redis.url,
      '--blobs',
      'nowhere',
    ]);
    t.is(bad.code, 2);
    t.regex(
      bad.stderr,
      /^longattn: --blobs: expected redis, redis:\/\/host:port, fs:DIR, s3:\/\/bucket\/prefix or an absolute path, got "nowhere"\n$/,
    );
    t.false(existsSync(inputs.request('bad').out));
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
    inputs.cleanup();
  }
});
