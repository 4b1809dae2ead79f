import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type BenchRow, formatRow, normalizeLine, parseRow } from '@longattn/cli';
import test from 'ava';
import { longattn, ROOT, tempDir } from '../support/cli.ts';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The lines of a markdown text that are bench table rows (parseRow accepts them), padding removed. */
const benchLines = (text: string): string[] =>
  text
    .split('\n')
    .filter((line) => parseRow(line) !== undefined)
    .map(normalizeLine);

/** The bench table's header line, whatever its padding. */
const HEADER = '| who | n | H | D | mask | ms (median) | process ms | GFLOP/s | peak RSS MB |';
const hasHeader = (text: string): boolean => text.split('\n').some((line) => line.startsWith('|') && normalizeLine(line) === HEADER);

/** A measured row: positive times, GFLOP/s and RSS, and a whole process that took longer than its compute. */
const measured = (r: BenchRow | undefined): boolean =>
  r !== undefined && r.ms! > 0 && r.processMs! > r.ms! && r.gflops! > 0 && r.peakRssMB! > 0;

// Speed is never asserted here. What is checked: every row BENCHMARKS.md can show is measured by one
// run (longattn's compute phase and whole process, each peer warm and as a cold process), and
// --markdown writes exactly the rows the run measured, plus a real PNG plot.
test('bench --json --markdown: every row measured, and the markdown holds exactly those rows and a PNG plot', async (t) => {
  const dir = tempDir('longattn-bench-test-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const md = join(dir, 'B.md');
  const args = [
    'bench',
    '--backends',
    'js',
    '--sizes',
    '96',
    '--heads',
    '2',
    '--d',
    '16',
    '--mask',
    'both',
    '--reps',
    '1',
    '--threads',
    '1',
  ];
  const { code, stdout, stderr } = await longattn([...args, '--json', '--markdown', md], { timeoutMs: 180_000 });
  t.is(code, 0, stderr);
  const rows = JSON.parse(stdout.trim().split('\n').at(-1)!) as BenchRow[];
  for (const causal of [false, true]) {
    const at = rows.filter((r) => r.causal === causal && r.n === 96);
    t.true(measured(at.find((r) => r.who === 'longattn js')), `longattn js, causal=${causal}`);
    t.true(measured(at.find((r) => r.who === 'onnxruntime MultiHeadAttention')), `onnxruntime, causal=${causal}`);
    // numpy must run (scripts/setup-system.sh installs python3-numpy): a skipped peer fails here.
    const numpy = at.find((r) => r.who === 'numpy naive');
    t.true(measured(numpy), `numpy, causal=${causal}: ${numpy?.skipped ?? 'measured'}`);
  }
  const text = readFileSync(md, 'utf8');
  t.true(hasHeader(text));
  t.deepEqual(benchLines(text), rows.map(formatRow));
  t.true(text.includes('](B.png)'), 'the markdown links its plot');
  t.regex(text, /CPU: .+ flags: /);
  t.regex(text, /Node v20\.\d+\.\d+; longattn at commit \S+/);
  const png = readFileSync(join(dir, 'B.png'));
  t.true(png.subarray(0, 8).equals(PNG_SIGNATURE), 'B.png is a PNG');
  t.true(png.length > 10_000, `a plot with content, got ${png.length} bytes`);
});

test('bench --markdown refuses a path it cannot write, naming the flag, exit 2, before measuring anything', async (t) => {
  for (const bad of ['/nonexistent-dir/B.md', 'BENCHMARKS.txt']) {
    const { code, stderr } = await longattn(['bench', '--sizes', '64', '--markdown', bad]);
    t.is(code, 2, stderr);
    t.regex(stderr.trim(), /^longattn: --markdown: expected/);
    t.is(stderr.trim().split('\n').length, 1, stderr);
  }
  t.false(existsSync(join(ROOT, 'BENCHMARKS.txt')));
});

test('BENCHMARKS.md is one bench run: its rows are the bench format, measured rows are consistent, and the plot is there', (t) => {
  const text = readFileSync(join(ROOT, 'BENCHMARKS.md'), 'utf8');
  t.regex(text, /^Written by `longattn bench .*--markdown BENCHMARKS\.md`/m);
  t.true(hasHeader(text));
  const lines = benchLines(text);
  t.true(lines.length >= 10, `rows: ${lines.length}`);
  for (const line of lines) {
    const row = parseRow(line)!;
    t.is(formatRow(row), line, 'written by formatRow');
    if (row.skipped || row.processMs === undefined || row.processMs > row.ms!) continue;
    // longattn's process contains its compute phase; a peer's cold process is a separate run, and
    // an inversion there (noise on a loaded machine) must be named under the table.
    t.false(row.who.startsWith('longattn'), `process ms > ms: ${line}`);
    t.true(text.includes(`${row.who} n = ${row.n} H = ${row.H} ${row.causal ? 'causal' : 'dense'}`), `inversion named: ${line}`);
  }
  for (const who of ['longattn ort', 'onnxruntime MultiHeadAttention', 'numpy naive']) {
    t.true(
      lines.some((line) => parseRow(line)!.who === who && !parseRow(line)!.skipped),
      `a measured ${who} row`,
    );
  }
  t.true(readFileSync(join(ROOT, 'BENCHMARKS.png')).subarray(0, 8).equals(PNG_SIGNATURE));
});

test("README's benchmark summary links BENCHMARKS.md and quotes only rows it holds, verbatim", (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const rows = new Set(benchLines(readFileSync(join(ROOT, 'BENCHMARKS.md'), 'utf8')));
  t.true(readme.includes('](BENCHMARKS.md)'));
  const quoted = benchLines(readme);
  t.true(quoted.length > 0, 'the README quotes some rows');
  for (const line of quoted) t.true(rows.has(line), `README row not in BENCHMARKS.md: ${line}`);
});

test('the sparse-pattern table is written aligned, as the formatter lays it out (a committed BENCHMARKS.md must pass lint)', (t) => {
  const markdown = readFileSync(join(ROOT, 'BENCHMARKS.md'), 'utf8');
  const patterns = markdown.slice(markdown.indexOf('## Sparse patterns'));
  t.true(patterns.length > 20, 'BENCHMARKS.md has its sparse-pattern section');
  const lines = patterns.split('\n').filter((l) => l.startsWith('|'));
  t.true(lines.length >= 3);
  for (const l of lines) t.is([...l].length, [...lines[0]!].length, `unaligned: ${l}`);
});
