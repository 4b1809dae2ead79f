import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { longattn, tempDir } from '../support/cli.ts';

/** A pattern row of `bench --patterns --json` (packages/cli/src/bench/pattern-rows.ts). */
interface PatternRow {
  pattern: string;
  n: number;
  tiles: number;
  areaRatio: number;
  ms: number;
  gflops: number;
  speedup: number;
  target: number;
}

// Speed is never asserted: every pattern row is measured against full causal at the same n, its
// numbers agree with each other, and --markdown writes them in their own table.
test('bench --patterns: full causal, then StreamingLLM, Longformer, BigBird and strided, each measured with its area ratio and 0.8× target', async (t) => {
  const dir = tempDir('longattn-bench-patterns-test-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const md = join(dir, 'B.md');
  const args = ['bench', '--backends', 'js', '--sizes', '64', '--heads', '1', '--d', '16', '--mask', 'causal', '--no-peers', '--reps', '1'];
  const { code, stdout, stderr } = await longattn([...args, '--threads', '1', '--patterns', '640', '--json', '--markdown', md], {
    timeoutMs: 240_000,
  });
  t.is(code, 0, stderr);
  const all = JSON.parse(stdout.trim().split('\n').at(-1)!) as (PatternRow | { pattern?: undefined })[];
  const rows = all.filter((r): r is PatternRow => r.pattern !== undefined);
  t.deepEqual(
    rows.map((r) => r.pattern),
    ['full causal', 'StreamingLLM', 'Longformer', 'BigBird', 'strided'],
  );
  const [causal] = rows;
  t.is(causal!.areaRatio, 1);
  t.is(causal!.speedup, 1);
  for (const r of rows) {
    t.is(r.n, 640);
    t.true(r.tiles > 0 && r.ms > 0 && r.gflops > 0, `${r.pattern}: measured`);
    t.true(r.areaRatio > 0, `${r.pattern}: area ratio ${r.areaRatio}`); // at this small n, Longformer's band + globals can exceed causal
    t.is(r.target, 0.8 * r.areaRatio);
    t.true(Math.abs(r.speedup - causal!.ms / r.ms) < 1e-9 * r.speedup, `${r.pattern}: speedup = causal ms / ms`);
  }
  t.true(rows.find((r) => r.pattern === 'strided')!.areaRatio > 1, 'strided: sparser than causal');
  const text = readFileSync(md, 'utf8');
  t.regex(text, /## Sparse patterns/);
  for (const r of rows) t.regex(text, new RegExp(`^\\| longattn js +\\| ${r.pattern} +\\|`, 'm')); // aligned columns
});
