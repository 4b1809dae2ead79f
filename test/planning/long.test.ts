import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { exactnessBound, maxAbsDiff, referenceRows, validateSpec } from '@longattn/attention';
import { readTensor } from '@longattn/tensor';
import { tempDir } from '../support/cli.ts';
import { columnInputs, longRun, peakRssMB } from './support.ts';

/**
 * Long documents through the local engine as real processes (test/planning/long-run.ts): memory
 * stays bounded and progress keeps coming. A whole 10M-token causal job is 2·10^14 FLOP of D = 1
 * tiles (~17 h on this machine's 2 cores), so at 10M the test watches it start, compute and report
 * progress within a bounded RSS, then stops it with SIGINT; a 65536-token job runs to the end.
 */

test.serial('10M causal tokens, f16 (10_000_000, 1) inputs: progress within 768 MB, then SIGINT stops it cleanly', async (t) => {
  const dir = tempDir('longattn-10m-');
  try {
    const files = columnInputs(dir, 10_000_000, 'f16');
    const run = longRun({ ...files, out: join(dir, 'o.npy'), lse: join(dir, 'lse.npy'), options: { causal: true }, threads: 2 });
    const first = await run.progressWhere((p) => p.doneTiles === 0);
    t.is(first.totalTiles, 95_389_405); // Σ over the 39063 q-blocks of 256 rows of ⌊(256·qb + 255) / 2048⌋ + 1
    t.is(first.totalFlops, 4 * ((10_000_000 * 10_000_001) / 2));
    // Heaviest q-blocks first: 4883 tiles each. Two tasks finished = progress advancing, not a one-off.
    const second = await run.progressWhere((p) => p.doneTiles >= 2 * 4883);
    const rss = peakRssMB(run.child.pid!);
    t.log(
      `10M: first progress after ${first.atMs} ms, ${second.doneTiles} tiles done after ${second.atMs} ms, peak RSS ${rss.toFixed(0)} MB`,
    );
    // Measured ~480 MB: Node and two ort threads (~200 MB), the three inputs converted once to shared
    // float32 (120 MB) and the output file's writes. The eager planner used 4.3 GB and crashed.
    t.true(rss < 768, `peak RSS ${rss.toFixed(0)} MB`);
    run.child.kill('SIGINT');
    const { code } = await run.exit;
    t.is(code, 130);
    t.deepEqual(readdirSync(dir).sort(), ['k.npy', 'q.npy', 'v.npy'], 'no output, no temp file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('65536 causal tokens, f16 (65536, 1): runs to the end in bounded memory, progress to the total, output exact', async (t) => {
  const dir = tempDir('longattn-64k-');
  try {
    const n = 65536;
    const files = columnInputs(dir, n, 'f16');
    const out = join(dir, 'o.npy');
    const lse = join(dir, 'lse.npy');
    const run = longRun({ ...files, out, lse, options: { causal: true }, threads: 2 });
    const { code, stderr } = await run.exit;
    t.is(code, 0, stderr);
    const p = run.progress;
    t.true(p.length >= 2);
    t.true(
      p.every((x, i) => i === 0 || x.doneTiles >= p[i - 1]!.doneTiles),
      'progress never goes back',
    );
    t.is(p.at(-1)!.doneTiles, p.at(-1)!.totalTiles);
    t.true(
      p.every((x) => x.rssMB < 512),
      `RSS ${Math.max(...p.map((x) => x.rssMB))} MB`,
    );
    // Exactness on sampled rows (first, last, around q-block and key-block edges) against float64.
    const spec = validateSpec({ q: [n, 1], k: [n, 1], v: [n, 1] }, { causal: true });
    const [q, k, v, o, l] = [files.q, files.k, files.v, out, lse].map((f) => readTensor(f).data as Float32Array) as Float32Array[];
    const rows = [0, 1, 255, 256, 2047, 2048, 30000, n - 257, n - 1];
    const { ref, naive } = referenceRows(spec, q!, k!, v!, 0, 0, rows);
    const ours = Float32Array.from(rows, (i) => o![i]!);
    t.true(maxAbsDiff(ours, ref.out) <= exactnessBound(naive.out, ref.out), `max error ${maxAbsDiff(ours, ref.out)}`);
    t.true(
      maxAbsDiff(
        Float32Array.from(rows, (i) => l![i]!),
        ref.lse,
      ) <= 1e-4,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial(
  '--block-q 1 --block-k 1 on 8192 causal tokens (33.5M tiles): runs locally in bounded memory with progress; SIGINT stops it',
  async (t) => {
    const dir = tempDir('longattn-1x1-');
    try {
      const files = columnInputs(dir, 8192, 'f32');
      const run = longRun({ ...files, out: join(dir, 'o.npy'), options: { causal: true }, blockQ: 1, blockK: 1, threads: 2 });
      const first = await run.progressWhere((p) => p.doneTiles === 0);
      t.is(first.totalTiles, (8192 * 8193) / 2);
      const later = await run.progressWhere((p) => p.doneTiles > 0 && p.atMs > first.atMs + 2000);
      const rss = peakRssMB(run.child.pid!);
      t.log(`1×1 tiles: ${later.doneTiles} tiles in ${later.atMs - first.atMs} ms, peak RSS ${rss.toFixed(0)} MB`);
      t.true(rss < 512, `peak RSS ${rss.toFixed(0)} MB`); // one q-block holds at most 8192 tiny partials
      run.child.kill('SIGINT');
      t.is((await run.exit).code, 130);
      t.deepEqual(readdirSync(dir).sort(), ['k.npy', 'q.npy', 'v.npy']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
