/**
 * Issue 14.11 (queue part): a signal to `run --engine queue` cancels the job the command owns
 * and exits 130 (SIGINT) / 143 (SIGTERM). Real CLI process, real signals, real redis-server.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import test from 'ava';
import { connectRedis } from '@longattn/engine/queue';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { BIN, ROOT } from '../support/cli.ts';
import { oddInputs, onlyJobId, until } from './support.ts';

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  test(`${signal} on run --engine queue: the job is cancelled (flow and blobs gone, status cancelled), exit ${code}`, async (t) => {
    const redis = await startRedis();
    const inputs = oddInputs();
    const client = connectRedis(redis.url);
    try {
      const r = inputs.request('signalled');
      const args = [
        '--q',
        r.q,
        '--k',
        r.k,
        '--v',
        r.v,
        '--out',
        r.out,
        '--causal',
        '--backend',
        'js',
        '--block-q',
        '64',
        '--block-k',
        '128',
      ];
      const child = spawn(process.execPath, [BIN, 'run', ...args, '--engine', 'queue', '--redis', redis.url], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((done) => child.once('exit', (c) => done(c)));
      // No workers: the job waits in the queue until the signal.
      const id = await until('the job to be queued', async () =>
        (await client.llen('bull:{longattn}:tiles:wait')) > 0 ? await onlyJobId(client) : undefined,
      );
      child.kill(signal);
      t.is(await exited, code, stderr);
      t.regex(stderr, new RegExp(`longattn: job ${id} cancelled \\(${signal}\\)\\n$`));
      t.is(await client.hget(`{longattn}:job:${id}`, 'state'), 'cancelled');
      t.true((await client.ttl(`{longattn}:job:${id}`)) > 0, 'its record expires');
      t.deepEqual(await client.keys('longattn:blob:*'), [], 'blobs deleted');
      t.is(await client.llen('bull:{longattn}:tiles:wait'), 0, 'tile jobs removed');
      t.false(existsSync(r.out));
    } finally {
      client.disconnect();
      await redis.close();
      inputs.cleanup();
    }
  });
}
