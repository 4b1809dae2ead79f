import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { readTensor } from '@longattn/tensor';
import { longattn, tempDir } from '../support/cli.ts';
import { LINEAR_CASES, maxAbsDiff, softmaxRow, writeCase } from './reference.ts';

const dir = tempDir('longattn-linear-cli-');
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const c = LINEAR_CASES[2]!; // causal, Sq > Sk, bshd, B = 2, GQA: sampled rows include ones that see no key
const prepared = writeCase(join(dir, 'in'), c);
const inputs = ['--q', prepared.paths.q, '--k', prepared.paths.k, '--v', prepared.paths.v, '--layout', 'bshd', '--causal'];

test('--linear is labelled an approximation in the summary and in --json; --report-error agrees with the test’s own softmax on the same rows', async (t) => {
  const out = join(dir, 'o.npy');
  const text = await longattn(['run', ...inputs, '--out', out, '--linear', '--threads', '2', '--report-error', '9']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /^linear attention \(approximation, not softmax\)/);
  t.regex(text.stdout, /error {4}vs exact softmax on 9 sampled rows \(seed 1\): max abs [\d.e+-]+, relative [\d.e+-]+/);
  const o = readTensor(out).data;
  t.true(maxAbsDiff(o, prepared.ref) <= prepared.bound);

  const json = await longattn(['run', ...inputs, '--out', join(dir, 'o2.npy'), '--linear', '--json', '--report-error', '9']);
  t.is(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout) as {
    approximation: string;
    reportError: { rows: number[]; seed: number; maxAbs: number; relative: number };
  };
  t.is(r.approximation, 'linear');
  const { rows, seed, maxAbs, relative } = r.reportError;
  t.is(seed, 1);
  t.is(rows.length, 9);
  t.is(new Set(rows).size, 9, 'distinct rows');
  t.true(rows.every((x) => Number.isInteger(x) && x >= 0 && x < c.B * c.H * c.Sq));
  t.regex(text.stdout, new RegExp(`max abs ${maxAbs.toPrecision(3).replace('.', '\\.')}`), 'the same seeded rows in both runs');
  // The test's own exact softmax on the reported rows (flat (b·H + h)·Sq + i).
  let err = 0;
  let top = 0;
  for (const flat of rows) {
    const i = flat % c.Sq;
    const h = Math.floor(flat / c.Sq) % c.H;
    const b = Math.floor(flat / (c.Sq * c.H));
    const exact = softmaxRow(c, prepared.q, prepared.k, prepared.v, b, h, i);
    const at = ((b * c.Sq + i) * c.H + h) * c.D; // bshd
    for (let d = 0; d < c.D; d++) {
      err = Math.max(err, Math.abs(o[at + d]! - exact[d]!));
      top = Math.max(top, Math.abs(exact[d]!));
    }
  }
  t.true(err > 0.01, 'linear attention is not softmax: the error is real');
  t.true(Math.abs(maxAbs - err) <= 1e-9 * Math.max(1, err), `reported ${maxAbs}, computed here ${err}`);
  t.true(Math.abs(relative - err / top) <= 1e-9, `reported relative ${relative}, computed here ${err / top}`);

  // N ≥ all rows: every row is compared.
  const all = await longattn(['run', ...inputs, '--out', join(dir, 'o3.npy'), '--linear', '--json', '--report-error', '100000']);
  t.is(all.code, 0, all.stderr);
  t.is((JSON.parse(all.stdout) as { reportError: { rows: number[] } }).reportError.rows.length, c.B * c.H * c.Sq);
});

test('bad combinations exit 2 with one line naming the flag, and write nothing', async (t) => {
  const out = join(dir, 'bad.npy');
  const cases: [string[], RegExp][] = [
    [['--linear', '--window', '8,0'], /^longattn: --window: not with --linear/],
    [['--linear', '--sinks', '4'], /^longattn: --sinks: not with --linear/],
    [['--linear', '--global', '3'], /^longattn: --global: not with --linear/],
    [['--linear', '--stride', '3'], /^longattn: --stride: not with --linear/],
    [['--linear', '--lse', join(dir, 'bad-lse.npy')], /^longattn: --lse: not with --linear/],
    [['--linear', '--scale', '0.5'], /^longattn: --scale: not with --linear/],
    [['--linear', '--backend', 'wasm'], /^longattn: --backend: --linear runs on its own/],
    [['--linear', '--report-error', '0'], /^longattn: --report-error: expected an integer/],
    [['--linear', '--report-error', 'x'], /^longattn: --report-error: expected an integer/],
    [['--report-error', '5'], /^longattn: --report-error: only with --linear/],
    [
      ['--linear', '--report-error', '5', '--detach', '--engine', 'queue', '--redis', 'redis://127.0.0.1:1'],
      /^longattn: --report-error: not with --detach/,
    ],
  ];
  for (const [flags, message] of cases) {
    const r = await longattn(['run', ...inputs, '--out', out, ...flags]);
    t.is(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message, flags.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, 'one line');
    t.false(existsSync(out), `${flags.join(' ')}: nothing written`);
    t.false(existsSync(join(dir, 'bad-lse.npy')));
  }
});
