/**
 * Issue 14.1: an output path that names an input or the other output is refused before anything
 * is read or written (exit 2, one line naming the output's flag, every file untouched), for
 * `run` (local, queue, --detach), `result` (the job stays collectable) and `demo`.
 */
import { linkSync, mkdirSync, symlinkSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { writeSafetensors } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { longattn, tempDir } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';
import { startService, until, type Service } from '../queue/support.ts';
import { assertBadInput, smallInputs, snapshot } from './support.ts';

const inputs = smallInputs();
const { dir } = inputs;
const n = 2 * 37 * 8;
writeSafetensors(join(dir, 'w.safetensors'), {
  q: { shape: [2, 37, 8], data: randomTensor(n, 1) },
  k: { shape: [2, 37, 8], data: randomTensor(n, 2) },
  v: { shape: [2, 37, 8], data: randomTensor(n, 3) },
});
symlinkSync(inputs.q, join(dir, 'q-link.npy'));
linkSync(inputs.k, join(dir, 'k-hard.npy'));
symlinkSync(dir, join(dir, 'here'));
mkdirSync(join(dir, 'a-dir.npy'));

const npyInputs = ['--q', inputs.q, '--k', inputs.k, '--v', inputs.v];
const stInputs = ['--q', `${dir}/w.safetensors#q`, '--k', `${dir}/w.safetensors#k`, '--v', `${dir}/w.safetensors#v`];

const cases: [string, string[], string, RegExp][] = [
  [
    '--out and --lse the same file',
    [...npyInputs, '--out', join(dir, 'o.npy'), '--lse', join(dir, 'o.npy')],
    '--lse',
    /same file as --out/,
  ],
  ['--out an input', [...npyInputs, '--out', inputs.q], '--out', /same file as the input --q/],
  ['--lse an input', [...npyInputs, '--out', join(dir, 'o.npy'), '--lse', inputs.v], '--lse', /same file as the input --v/],
  ['--out the safetensors file the inputs come from', [...stInputs, '--out', join(dir, 'w.safetensors')], '--out', /input --q/],
  ['--out a symbolic link to an input', [...npyInputs, '--out', join(dir, 'q-link.npy')], '--out', /input --q/],
  ['--out a hard link to an input', [...npyInputs, '--out', join(dir, 'k-hard.npy')], '--out', /input --k/],
  ['--out an input through a linked directory', [...npyInputs, '--out', join(dir, 'here', 'v.npy')], '--out', /input --v/],
  [
    '--lse the --out through a linked directory',
    [...npyInputs, '--out', join(dir, 'o.npy'), '--lse', join(dir, 'here/o.npy')],
    '--lse',
    /--out/,
  ],
  ['--out a directory', [...npyInputs, '--out', join(dir, 'a-dir.npy')], '--out', /is a directory/],
];

for (const [name, args, argument, pattern] of cases) {
  for (const mode of ['local', 'queue', 'detach'] as const) {
    test(`run (${mode}): ${name} → exit 2, nothing touched`, async (t) => {
      const before = snapshot(dir);
      // The queue modes name a Redis that is not there: the paths must be refused before it is reached.
      const engine =
        mode === 'local' ? [] : ['--engine', 'queue', '--redis', 'redis://127.0.0.1:9', ...(mode === 'detach' ? ['--detach'] : [])];
      const r = await longattn(['run', ...args, '--backend', 'js', ...engine]);
      assertBadInput(t, r, argument, pattern);
      t.deepEqual(snapshot(dir), before);
    });
  }
}

test('run --detach checks --out like any run: extension and directory', async (t) => {
  const engine = ['--engine', 'queue', '--redis', 'redis://127.0.0.1:9', '--detach'];
  assertBadInput(
    t,
    await longattn(['run', ...npyInputs, '--out', join(dir, 'o.txt'), ...engine]),
    '--out',
    /ending in \.npy or \.safetensors/,
  );
  assertBadInput(t, await longattn(['run', ...npyInputs, '--out', join(dir, 'nope', 'o.npy'), ...engine]), '--out', /does not exist/);
});

test('run: distinct outputs next to the inputs still work (the check refuses only clashes)', async (t) => {
  const own = smallInputs();
  symlinkSync(own.dir, join(own.dir, 'here'));
  const args = ['--q', own.q, '--k', own.k, '--v', own.v, '--backend', 'js', '--quiet'];
  const r = await longattn(['run', ...args, '--out', join(own.dir, 'o.npy'), '--lse', join(own.dir, 'here', 'lse.npy')]);
  t.is(r.code, 0, r.stderr);
  t.true(existsSync(join(own.dir, 'o.npy')) && existsSync(join(own.dir, 'lse.npy')));
});

test('result --out o.npy --lse o.npy → exit 2 and the job is kept, then collected', async (t) => {
  const redis = await startRedis();
  const services: Service[] = [];
  try {
    const out = join(tempDir(), 'o.npy');
    const submitted = await longattn([
      'run',
      ...npyInputs,
      '--out',
      out,
      '--backend',
      'js',
      '--engine',
      'queue',
      '--redis',
      redis.url,
      '--detach',
    ]);
    t.is(submitted.code, 0, submitted.stderr);
    const id = submitted.stdout.trim();
    services.push(await startService('worker', redis.url, ['--backend', 'js'], 'cli'), await startService('reducer', redis.url, [], 'cli'));
    await until('the job to finish', async () => {
      const r = await longattn(['status', id, '--redis', redis.url, '--json']);
      return (JSON.parse(r.stdout) as { state: string }).state === 'done' ? true : undefined;
    });
    const same = await longattn(['result', id, '--redis', redis.url, '--out', out, '--lse', out]);
    assertBadInput(t, same, '--lse', /same file as --out/);
    t.false(existsSync(out));
    const status = await longattn(['status', id, '--redis', redis.url, '--json']);
    t.is((JSON.parse(status.stdout) as { state: string }).state, 'done', 'the refused result did not delete the job');
    const ok = await longattn(['result', id, '--redis', redis.url, '--out', out, '--lse', join(tempDir(), 'lse.npy'), '--quiet']);
    t.is(ok.code, 0, ok.stderr);
    t.true(existsSync(out));
  } finally {
    await Promise.all(services.map((s) => s.stop()));
    await redis.close();
  }
});

test('demo: an output linked to an input in --dir → exit 2 before anything is written', async (t) => {
  const demoDir = tempDir();
  const q = join(demoDir, 'q.npy');
  symlinkSync(inputs.q, q);
  symlinkSync(q, join(demoDir, 'out.npy'));
  const before = snapshot(dir);
  const r = await longattn(['demo', '--n', '64', '--heads', '1', '--d', '8', '--dir', demoDir, '--backend', 'js']);
  assertBadInput(t, r, '--dir', /out\.npy" is the same file as the input --dir/);
  t.deepEqual(snapshot(dir), before, 'the linked input is untouched');
});
