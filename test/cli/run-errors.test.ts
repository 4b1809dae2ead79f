import { readdirSync, truncateSync, writeFileSync, copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { writeSafetensors, writeTensor } from '@longattn/tensor';
import { longattn, tempDir } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';

/**
 * Bad input: exit code 2, exactly one line on stderr naming the argument, no stack trace, and no
 * output file left behind (docs/contracts.md).
 */
const dir = tempDir();
const H = 2;
const S = 40;
const D = 8;
writeTensor(join(dir, 'q.npy'), [H, S, D], randomTensor(H * S * D, 1));
writeTensor(join(dir, 'k.npy'), [H, S, D], randomTensor(H * S * D, 2));
writeTensor(join(dir, 'v.npy'), [H, S, D], randomTensor(H * S * D, 3));
writeTensor(join(dir, 'k3.npy'), [3, S, D], randomTensor(3 * S * D, 2));
writeTensor(join(dir, 'kd.npy'), [H, S, D + 1], randomTensor(H * S * (D + 1), 2));
writeTensor(join(dir, 'krank.npy'), [S, D], randomTensor(S * D, 2));
writeTensor(join(dir, 'zero.npy'), [H, 0, D], new Float32Array(0));
const nan = randomTensor(H * S * D, 4);
nan[77] = NaN;
writeTensor(join(dir, 'nan.npy'), [H, S, D], nan);
copyFileSync(join(dir, 'q.npy'), join(dir, 'trunc.npy'));
truncateSync(join(dir, 'trunc.npy'), statSync(join(dir, 'q.npy')).size - 100);
writeFileSync(join(dir, 'garbage.npy'), 'this is not a tensor at all, just text');
// An int32 .npy written by hand: valid format, unsupported dtype.
const header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 40, 8), }";
const padded = `${header.padEnd(118, ' ')}\n`;
writeFileSync(
  join(dir, 'int.npy'),
  Buffer.concat([
    Buffer.from([0x93]),
    Buffer.from('NUMPY'),
    Buffer.from([1, 0, padded.length, 0]),
    Buffer.from(padded),
    Buffer.alloc(H * S * D * 4),
  ]),
);
writeSafetensors(join(dir, 'qkv.safetensors'), {
  q: { shape: [H, S, D], data: randomTensor(H * S * D, 1) },
  k: { shape: [H, S, D], data: randomTensor(H * S * D, 2) },
});

const base = (out = join(dir, 'out.npy')) => [
  'run',
  '--q',
  join(dir, 'q.npy'),
  '--k',
  join(dir, 'k.npy'),
  '--v',
  join(dir, 'v.npy'),
  '--out',
  out,
  '--backend',
  'js',
];
const withArg = (name: string, value: string) => {
  const args = base();
  args[args.indexOf(name) + 1] = value;
  return args;
};

const cases: [string, string[], RegExp][] = [
  ['missing file', withArg('--q', join(dir, 'nope.npy')), /^longattn: --q: .*no such file/],
  ['truncated file', withArg('--k', join(dir, 'trunc.npy')), /^longattn: --k: /],
  ['corrupt file', withArg('--v', join(dir, 'garbage.npy')), /^longattn: --v: /],
  ['wrong dtype', withArg('--q', join(dir, 'int.npy')), /^longattn: --q: .*i4/],
  ['rank mismatch', withArg('--k', join(dir, 'krank.npy')), /^longattn: k: rank 2 differs/],
  ['head dim mismatch', withArg('--k', join(dir, 'kd.npy')), /^longattn: k: head dim 9/],
  ['head count mismatch', withArg('--k', join(dir, 'k3.npy')), /^longattn: v: 2 heads differ from k's 3/],
  ['zero-length sequence', withArg('--q', join(dir, 'zero.npy')), /^longattn: q: every dimension must be ≥ 1/],
  ['NaN input', withArg('--v', join(dir, 'nan.npy')), /^longattn: --v: non-finite value at flat index 77/],
  ['missing safetensors name', withArg('--q', `${join(dir, 'qkv.safetensors')}#nope`), /^longattn: --q: .*nope/],
  ['bad --window', [...base(), '--window', '5;3'], /^longattn: --window: expected L,R with integers ≥ -1, got "5;3"/],
  ['bad --window side', [...base(), '--window', '-2,3'], /^longattn: --window: /],
  ['bad --threads', [...base(), '--threads', '0'], /^longattn: --threads: expected an integer/],
  ['bad --block-q', [...base(), '--block-q', 'x'], /^longattn: --block-q: expected an integer/],
  ['bad --layout', [...base(), '--layout', 'sbhd'], /^longattn: --layout: expected one of bhsd, bshd/],
  ['bad --scale', [...base(), '--scale', 'abc'], /^longattn: --scale: expected a finite number/],
  ['bad --engine', [...base(), '--engine', 'cloud'], /^longattn: --engine: expected one of local, queue/],
  ['unknown backend', withArg('--backend', 'cuda'), /^longattn: --backend: unknown backend "cuda"/],
  ['unknown flag', [...base(), '--fast'], /^longattn: unknown option '--fast'/],
  ['missing required flag', ['run', '--q', join(dir, 'q.npy')], /^longattn: required option '--k <ref>'/],
  ['output directory missing', base(join(dir, 'no-such-dir', 'out.npy')), /^longattn: --out: /],
  ['unknown command', ['frobnicate'], /^longattn: unknown command 'frobnicate'/],
];

for (const [name, args, message] of cases) {
  test(`${name}: exit 2, one line naming the argument, no output`, async (t) => {
    const before = readdirSync(dir).sort();
    const r = await longattn(args);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, message);
    t.is(r.stderr.trim().split('\n').length, 1, `expected one line, got: ${r.stderr}`);
    t.notRegex(r.stderr, /\bat .*\.ts:\d+/); // no stack trace
    t.deepEqual(readdirSync(dir).sort(), before, 'a file was left behind');
  });
}

test('--allow-nonfinite lets NaN through', async (t) => {
  const out = join(tempDir(), 'o.npy');
  const r = await longattn([
    ...withArg('--v', join(dir, 'nan.npy')).slice(0, -4),
    '--out',
    out,
    '--backend',
    'js',
    '--allow-nonfinite',
    '--quiet',
  ]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '');
});

test('--window accepts -1 as typed and --json prints one object', async (t) => {
  const out = join(tempDir(), 'o.npy');
  const r = await longattn([
    'run',
    '--q',
    join(dir, 'q.npy'),
    '--k',
    join(dir, 'k.npy'),
    '--v',
    join(dir, 'v.npy'),
    '--out',
    out,
    '--window',
    '-1,9',
    '--backend',
    'js',
    '--json',
  ]);
  t.is(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  t.like(result, { backend: 'js', engine: 'local', out, shape: { B: 1, H: 2, Hk: 2, Sq: 40, Sk: 40, D: 8 } });
  t.true(result.gflops > 0 && result.wallMs > 0 && result.tiles > 0);
});
