import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { readTensor } from '@longattn/tensor';
import { longattn, tempDir } from '../support/cli.ts';

/** `demo --inspect`: the planted structure is found by the statistics, and the files are there. */
test('demo --inspect finds the planted local, sink and retrieval heads', async (t) => {
  const dir = tempDir();
  const r = await longattn(['demo', '--inspect', '--n', '777', '--heads', '5', '--d', '32', '--backend', 'js', '--dir', dir]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /planted in head 0: local attention → .* ✓ found/);
  t.regex(r.stdout, /planted in head 1: local attention → .* ✓ found/);
  t.regex(r.stdout, /planted in head 2: a sink on keys 0–3 → sinkShare 0\.9\d\d ✓ found/);
  t.regex(r.stdout, /planted in head 3: retrieval of token 97 → row 776's top key 97 .* ✓ found/);
  t.true(existsSync(join(dir, 'map.png')));
  // The retrieval head's marked token is the key that receives the most attention.
  const received = readTensor(join(dir, 'received.npy'));
  t.deepEqual(received.shape, [5, 777]);
  const head3 = Array.from(received.data.subarray(3 * 777, 4 * 777));
  t.is(head3.indexOf(Math.max(...head3)), 97);
});

test('demo --inspect --json: one object with the run, the verification and the inspect report', async (t) => {
  const dir = tempDir();
  const r = await longattn(['demo', '--inspect', '--n', '300', '--heads', '4', '--d', '16', '--backend', 'js', '--dir', dir, '--json']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.like(out, { verified: { exact: true }, inspect: { shape: { H: 4, Sq: 300 } } });
  t.is(out.inspect.heads.length, 4);
  t.true(out.inspect.planted.every((f: { ok: boolean }) => f.ok));
});
