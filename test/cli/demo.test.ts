import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { readTensor } from '@longattn/tensor';
import { longattn, tempDir } from '../support/cli.ts';

test('demo makes a document, runs causal attention, verifies sampled rows and says where the output went', async (t) => {
  const dir = tempDir();
  const r = await longattn(['demo', '--n', '700', '--heads', '2', '--d', '24', '--backend', 'js', '--dir', dir]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /700-token sample document, 2 heads × D=24, causal/);
  t.regex(r.stdout, /verified 12 sampled rows against the float64 reference: .* → exact/);
  t.regex(r.stdout, /GFLOP\/s/);
  t.true(r.stdout.includes(join(dir, 'out.npy')));
  t.deepEqual(readTensor(join(dir, 'out.npy')).shape, [2, 700, 24]);
  t.deepEqual(readTensor(join(dir, 'lse.npy')).shape, [2, 700]);
});

test('demo --json reports the verification', async (t) => {
  const dir = tempDir();
  const r = await longattn([
    'demo',
    '--n',
    '300',
    '--heads',
    '1',
    '--d',
    '16',
    '--backend',
    'js',
    '--threads',
    '1',
    '--dir',
    dir,
    '--json',
  ]);
  t.is(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  t.like(result, { backend: 'js', threads: 1, verified: { exact: true }, shape: { H: 1, Sq: 300, Sk: 300, D: 16 } });
  t.true(existsSync(join(dir, 'q.npy')));
});
