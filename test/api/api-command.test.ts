import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { freePort } from '../../scripts/redis-test-server.ts';
import { longattn, tempDir } from '../support/cli.ts';

test('longattn api: bad keys, Redis or blobs exit 2 with one line naming the argument, never printing a key', async (t) => {
  const redis = await startRedis();
  const dir = tempDir();
  try {
    const port = String(await freePort());
    const run = (args: string[], env: NodeJS.ProcessEnv) => longattn(['api', '--redis', redis.url, '--port', port, ...args], { env });
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [[], { LONGATTN_API_KEYS: '' }, /^longattn: --keys-file: no API keys/],
      [[], { LONGATTN_API_KEYS: 'secret-without-tenant' }, /^longattn: LONGATTN_API_KEYS: entry 1: expected tenant=key/],
      [[], { LONGATTN_API_KEYS: 'a=short' }, /^longattn: LONGATTN_API_KEYS: entry 1: expected tenant=key/],
      [[], { LONGATTN_API_KEYS: 'a=same-key-123,b=same-key-123' }, /^longattn: LONGATTN_API_KEYS: entry 2: the same key is given twice/],
      [[], { LONGATTN_API_KEYS: 'a:b=long-enough-key' }, /^longattn: LONGATTN_API_KEYS: entry 1/],
      [['--keys-file', join(dir, 'missing')], {}, /^longattn: --keys-file: cannot read/],
      [['--blobs', 'relative/dir'], { LONGATTN_API_KEYS: 'a=long-enough-key' }, /^longattn: --blobs: /],
      [['--port', '70000'], { LONGATTN_API_KEYS: 'a=long-enough-key' }, /^longattn: --port: /],
    ];
    for (const [args, env, message] of cases) {
      const r = await run(args, env);
      t.is(r.code, 2, r.stderr);
      t.regex(r.stderr, message);
      t.is(r.stderr.split('\n').length, 2, 'one line');
      t.false(/secret-without-tenant|same-key-123|long-enough-key/.test(r.stderr), 'no key printed');
    }
    const unreachable = await longattn(['api', '--redis', 'redis://127.0.0.1:1', '--port', port], {
      env: { LONGATTN_API_KEYS: 'a=long-enough-key' },
    });
    t.is(unreachable.code, 2);
    t.regex(unreachable.stderr, /^longattn: --redis: cannot reach Redis/);

    // A keys file serves, and SIGTERM stops it with exit 0.
    writeFileSync(join(dir, 'keys'), '# tenants\nacme=file-key-0123456789\n');
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../support/cli.ts');
    const child = spawn(
      process.execPath,
      [BIN, 'api', '--redis', redis.url, '--port', port, '--keys-file', join(dir, 'keys'), '--log-level', 'warn'],
      {
        env: { ...process.env, LONGATTN_API_KEYS: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let log = '';
    child.stderr.on('data', (d) => (log += d));
    for (let i = 0; i < 300 && !log.includes('api on'); i++) await new Promise((r) => setTimeout(r, 50));
    t.regex(log, /api on http:\/\/\S+ .*\(1 keys/);
    const ok = await fetch(`http://127.0.0.1:${port}/v1/jobs`, { headers: { authorization: 'Bearer file-key-0123456789' } });
    t.is(ok.status, 200);
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    child.kill('SIGTERM');
    t.is(await exited, 0);
  } finally {
    await redis.close();
  }
});
