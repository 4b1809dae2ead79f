/**
 * Issue 14.10: a Redis that never answers, a blob server that is not there and a Redis killed
 * mid-run end in one clear line and exit 2, never a hang.
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import test from 'ava';
import { connectRedis } from '@longattn/engine/queue';
import { freePort, startRedis } from '../../scripts/redis-test-server.ts';
import { longattn } from '../support/cli.ts';
import { oddInputs, onlyJobId, until } from './support.ts';

/** A server that accepts connections and never replies. */
async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function jobFlags(r: { q: string; k: string; v: string; out: string }): string[] {
  return ['--q', r.q, '--k', r.k, '--v', r.v, '--out', r.out, '--causal', '--backend', 'js', '--block-q', '64', '--block-k', '128'];
}

test('a Redis that accepts and never answers: run, status, cancel, worker, reducer exit 2 in seconds, one line', async (t) => {
  const silent = await silentServer();
  const inputs = oddInputs();
  try {
    const request = inputs.request('silent');
    const runs = [
      ['run', ...jobFlags(request), '--engine', 'queue', '--redis', silent.url],
      ['status', 'la-1-ab', '--redis', silent.url],
      ['cancel', 'la-1-ab', '--redis', silent.url],
      ['worker', '--redis', silent.url],
      ['reducer', '--redis', silent.url],
    ];
    for (const args of runs) {
      const started = Date.now();
      const r = await longattn(args, { timeoutMs: 90_000 }); // a hang is killed here (code null)
      const seconds = (Date.now() - started) / 1000;
      t.is(r.code, 2, `${args[0]}: ${r.stderr}`);
      t.regex(
        r.stderr,
        /^longattn: --redis: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: no reply to PING within 3000 ms\n$/,
        args[0],
      );
      // The 3 s timeout is in the message; the wall-clock bound only allows for a CLI start on a loaded, shared machine.
      t.true(seconds < 80, `${args[0]} gave up after ${seconds.toFixed(1)} s`);
    }
    t.false(existsSync(request.out));
  } finally {
    await silent.close();
    inputs.cleanup();
  }
});

test('--blobs redis://127.0.0.1:1 (nothing there): run exits 2 naming --blobs, no record left; cancel does not hang', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const client = connectRedis(redis.url);
  try {
    const dead = `redis://127.0.0.1:${await freePort()}`;
    const request = inputs.request('deadblobs');
    const started = Date.now();
    const r = await longattn(['run', ...jobFlags(request), '--engine', 'queue', '--redis', redis.url, '--blobs', dead], {
      timeoutMs: 90_000,
    });
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /^longattn: --blobs: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.*\n$/);
    t.true(Date.now() - started < 80_000, 'no hang (a refused connection fails at once; the CLI’s start is what takes time here)');
    t.is(await onlyJobId(client), undefined, 'no job record stuck at "uploading"');
    t.false(existsSync(request.out));

    // A job whose blob server went away after submission: cancel answers within seconds.
    const id = 'la-1-ab';
    const manifest = JSON.stringify({
      version: 1,
      id,
      spec: { layout: 'bhsd', B: 1, H: 1, Hk: 1, Sq: 8, Sk: 8, D: 4, causal: false, window: { left: -1, right: -1 }, scale: 0.5 },
      qShape: [8, 4],
      blockQ: 8,
      blockK: 8,
      backend: 'js',
      blobs: dead,
      tileCount: 1,
      skippedTiles: 0,
      qBlockCount: 1,
      flops: 1,
      tileJobs: 1,
      reduceJobs: 1,
    });
    await client.hset(`{longattn}:job:${id}`, 'manifest', manifest, 'state', 'uploading');
    const cancelled = await longattn(['cancel', id, '--redis', redis.url, '--blobs', dead], { timeoutMs: 90_000 });
    t.is(cancelled.code, 2, cancelled.stderr);
    t.regex(cancelled.stderr, /^longattn: --blobs: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: .*\n$/);
  } finally {
    client.disconnect();
    await redis.close();
    inputs.cleanup();
  }
});

test('Redis killed mid-run: run --engine queue gives up after the outage limit with one line naming --redis, exit 2', async (t) => {
  const redis = await startRedis();
  const inputs = oddInputs();
  const client = connectRedis(redis.url);
  try {
    const request = inputs.request('killed');
    // No workers: the job waits until Redis dies.
    const running = longattn(['run', ...jobFlags(request), '--engine', 'queue', '--redis', redis.url], { timeoutMs: 150_000 });
    await until('the job to be queued', async () => ((await client.llen('bull:{longattn}:tiles:wait')) > 0 ? true : undefined));
    client.disconnect();
    const killedAt = Date.now();
    await redis.kill();
    const r = await running;
    const seconds = (Date.now() - killedAt) / 1000;
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /^longattn: --redis: Redis at redis:\/\/127\.0\.0\.1:\d+ stopped answering \([^\n]+\)\n$/);
    t.true(seconds >= 30 && seconds < 100, `gave up ${seconds.toFixed(1)} s after the kill (outage limit 30 s)`);
    t.false(existsSync(request.out));
  } finally {
    await redis.close();
    inputs.cleanup();
  }
});
