import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { readTensor, uniformF32, writeTensor } from '@longattn/tensor';
import { PNG } from 'pngjs';
import { longattn, tempDir } from '../support/cli.ts';

/** `longattn inspect` as a real process: the JSON contract, the table, bitwise determinism, bad input, bounded memory. */

function inputs(dir: string, shape: { H: number; Hk: number; Sq: number; Sk: number; D: number }, seed: number): string[] {
  writeTensor(join(dir, 'q.npy'), [shape.H, shape.Sq, shape.D], uniformF32(shape.H * shape.Sq * shape.D, seed));
  writeTensor(join(dir, 'k.npy'), [shape.Hk, shape.Sk, shape.D], uniformF32(shape.Hk * shape.Sk * shape.D, seed + 1));
  return ['--q', join(dir, 'q.npy'), '--k', join(dir, 'k.npy')];
}

test('inspect --json: the contract’s shape; report, received, weights and map bitwise equal on 1 and 3 threads', async (t) => {
  const dir = tempDir();
  // 2600 rows: three chunks per head, so 3 threads really split the work.
  const base = [
    ...inputs(dir, { H: 2, Hk: 1, Sq: 2600, Sk: 2600, D: 4 }, 11),
    '--causal',
    '--rows',
    '1:4',
    '--top-k',
    '4',
    '--map-size',
    '33',
  ];
  const runs = [];
  for (const threads of [1, 3]) {
    const out = (name: string) => join(dir, `${name}-${threads}`);
    const r = await longattn([
      'inspect',
      ...base,
      '--threads',
      String(threads),
      '--received',
      `${out('r')}.npy`,
      '--weights-out',
      `${out('w')}.npy`,
      '--map',
      `${out('m')}.png`,
      '--json',
    ]);
    t.is(r.code, 0, r.stderr);
    const { run, ...report } = JSON.parse(r.stdout);
    t.is(run.threads, threads);
    runs.push({ report, files: ['r', 'w'].map((n) => readFileSync(`${out(n)}.npy`)), png: readFileSync(`${out('m')}.png`) });
  }
  const [one, three] = runs as [(typeof runs)[0], (typeof runs)[0]];
  t.is(JSON.stringify(one.report), JSON.stringify(three.report));
  t.true(one.files[0]!.equals(three.files[0]!), 'received bits');
  t.true(one.files[1]!.equals(three.files[1]!), 'weights bits');
  t.true(one.png.equals(three.png), 'map bits');
  const head = one.report.heads[1];
  t.deepEqual(Object.keys(head), ['b', 'h', 'rows', 'entropy', 'meanDistance', 'sinkShare', 'localShare', 'top']);
  t.is(head.rows, 2600);
  t.deepEqual(head.top[0], { row: 1, lse: head.top[0].lse, keys: head.top[0].keys });
  t.is(head.top[0].keys.length, 2, 'row 1 sees keys 0 and 1 only');
  t.is(head.top[2].keys.length, 4);
  // Shapes: received [H, Sk] and weights [H, B−A, Sk], leading dims dropped as Q's are.
  t.deepEqual(readTensor(join(dir, 'r-1.npy')).shape, [2, 2600]);
  t.deepEqual(readTensor(join(dir, 'w-1.npy')).shape, [2, 3, 2600]);
  // Every row's weights sum to 1, so the received vector sums to the rows that see a key.
  const received = readTensor(join(dir, 'r-1.npy')).data;
  const total = received.subarray(0, 2600).reduce((a, b) => a + b, 0);
  t.true(Math.abs(total - 2600) < 1e-2, `Σ received = ${total}`);
  const png = PNG.sync.read(one.png);
  t.true(png.width >= 2 * 33 && png.height >= 33, `${png.width}×${png.height}`);
});

test('inspect with pattern flags: report and received bitwise equal on 1 and 3 threads; the pattern is honoured', async (t) => {
  const dir = tempDir();
  const base = [
    ...inputs(dir, { H: 2, Hk: 2, Sq: 2600, Sk: 2600, D: 4 }, 21),
    '--causal',
    '--window',
    '40,0',
    '--sinks',
    '3',
    '--stride',
    '97',
    '--global',
    '5,2000',
    '--rows',
    '2500:2502',
    '--top-k',
    '300',
  ];
  const runs = [];
  for (const threads of [1, 3]) {
    const r = await longattn(['inspect', ...base, '--threads', String(threads), '--received', join(dir, `r-${threads}.npy`), '--json']);
    t.is(r.code, 0, r.stderr);
    const { run: _run, ...report } = JSON.parse(r.stdout);
    runs.push({ report, received: readFileSync(join(dir, `r-${threads}.npy`)) });
  }
  t.is(JSON.stringify(runs[0]!.report), JSON.stringify(runs[1]!.report));
  t.true(runs[0]!.received.equals(runs[1]!.received), 'received bits');
  // Row 2500 (pos 2500) sees sinks 0–2, globals 5 and 2000, keys 2460–2500 and every 97th key back from 2500.
  const want = new Set([0, 1, 2, 5, 2000]);
  for (let j = 2460; j <= 2500; j++) want.add(j);
  for (let j = 2500; j >= 0; j -= 97) want.add(j);
  const seen = runs[0]!.report.heads[0].top[0].keys.map(([j]: [number, number]) => j);
  t.deepEqual(
    [...seen].sort((a, b) => a - b),
    [...want].sort((a, b) => a - b),
  );
});

test('inspect prints a readable table per head, and the top-k lists', async (t) => {
  const dir = tempDir();
  const r = await longattn([
    'inspect',
    ...inputs(dir, { H: 3, Hk: 3, Sq: 40, Sk: 40, D: 8 }, 3),
    '--window',
    '4,0',
    '--rows',
    '0:2',
    '--threads',
    '1',
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /entropy\s+distance\s+sink<4\s+local≤128/);
  for (const h of [0, 1, 2]) t.regex(r.stdout, new RegExp(`\\n\\s+0\\s+${h}\\s+40\\s+\\d\\.\\d{3}`));
  t.regex(r.stdout, /top b=0 h=2 row 0: 0:1\.0000/);
});

test('inspect: bad input exits 2 with one line naming the argument, and writes nothing', async (t) => {
  const dir = tempDir();
  const base = inputs(dir, { H: 2, Hk: 2, Sq: 30, Sk: 30, D: 4 }, 5);
  writeTensor(join(dir, 'badlse.npy'), [2, 29], new Float32Array(58));
  writeTensor(join(dir, 'mask.npy'), [3, 4], new Float32Array(12).fill(1));
  const before = readdirSync(dir).sort();
  const cases: [string[], RegExp][] = [
    [['--rows', '5:3'], /^longattn: --rows: expected A:B/],
    [['--rows', '0:31'], /^longattn: --rows: expected A:B with 0 ≤ A < B ≤ Sq = 30/],
    [['--map', join(dir, 'm.jpg')], /^longattn: --map: expected a \.png path/],
    [['--map', join(dir, 'nodir', 'm.png')], /^longattn: --map: directory .* does not exist/],
    [['--received', join(dir, 'q.npy')], /^longattn: --received: .* is the same file as the input --q/],
    [['--weights-out', join(dir, 'w.npy')], /^longattn: --weights-out: needs --rows/],
    [['--lse', join(dir, 'badlse.npy')], /^longattn: --lse: expected \[B,H,Sq\] = \[1,2,30\], got \[2,29\]/],
    [['--engine', 'queue'], /^longattn: --redis: required with --engine queue/],
    [['--x', 'x.npy'], /^longattn: --x: layer inputs are not supported by inspect yet/],
    [['--top-k', '-1'], /^longattn: --top-k: expected an integer/],
    [['--map-size', '0'], /^longattn: --map-size: expected an integer in 1\.\.4096/],
    [['--block-mask', join(dir, 'mask.npy')], /^longattn: --block-mask: needs --block-mask M\.npy and --mask-block B together/],
    [['--block-mask', join(dir, 'mask.npy'), '--mask-block', '8'], /^longattn: --block-mask: expected shape \[4,4\] or \[2,4,4\]/],
    [['--global', '30'], /^longattn: --global: expected positions 0 … 29/],
    [['--stride', '0'], /^longattn: --stride: /],
  ];
  for (const [extra, message] of cases) {
    const r = await longattn(['inspect', ...base, ...extra]);
    t.is(r.code, 2, `${extra.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.is(r.stdout, '');
  }
  t.deepEqual(readdirSync(dir).sort(), before);
  t.false(existsSync(join(dir, 'w.npy')));
});

test('inspect at n = 65536 stays within 1.5× the peak RSS of run at the same n', async (t) => {
  const dir = tempDir();
  const n = 65536;
  // A window keeps both commands quick on 2 cores; the memory question is about n, not the mask.
  const args = [...inputs(dir, { H: 1, Hk: 1, Sq: n, Sk: n, D: 16 }, 9), '--causal', '--window', '255,0', '--threads', '2', '--json'];
  writeTensor(join(dir, 'v.npy'), [1, n, 16], uniformF32(n * 16, 12));
  const run = await longattn(['run', ...args, '--v', join(dir, 'v.npy'), '--out', join(dir, 'o.npy')], { timeoutMs: 600_000 });
  t.is(run.code, 0, run.stderr);
  const inspect = await longattn(
    [
      'inspect',
      ...args,
      '--received',
      join(dir, 'r.npy'),
      '--map',
      join(dir, 'm.png'),
      '--rows',
      '65000:65010',
      '--weights-out',
      join(dir, 'w.npy'),
    ],
    { timeoutMs: 600_000 },
  );
  t.is(inspect.code, 0, inspect.stderr);
  const runRss = JSON.parse(run.stdout).peakRssMB as number;
  const inspectRss = JSON.parse(inspect.stdout).run.peakRssMB as number;
  t.log(`peak RSS: run ${runRss} MB, inspect ${inspectRss} MB`);
  t.true(inspectRss <= 1.5 * runRss, `inspect ${inspectRss} MB > 1.5 × run ${runRss} MB`);
});
