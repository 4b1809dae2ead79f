import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { InputError } from '@longattn/tensor';
import type { Command } from 'commander';
import { sampleLoad } from '../bench/load.ts';
import { machineInfo } from '../bench/machine.ts';
import { writeBenchmarks } from '../bench/markdown.ts';
import type { BenchOptions } from '../bench/rows.ts';
import { runBench } from '../bench/run-bench.ts';
import { benchPatterns, formatPatternRow, PATTERN_HEADER, type PatternRow } from '../bench/pattern-rows.ts';
import { availableBackends } from '../bench/backends.ts';
import { TABLE_HEADER } from '../bench/table.ts';
import { parseChoice, parseInteger, parseIntegerList } from '../parse.ts';

interface BenchFlags {
  backends?: string;
  sizes: number[];
  heads: number[];
  d: number;
  mask: 'dense' | 'causal' | 'both';
  threads: number;
  reps: number;
  peers: boolean;
  budget: number;
  long?: number;
  patterns?: number;
  layer?: number;
  json?: boolean;
  markdown?: string;
}

/** `--markdown FILE`: a .md path in a folder that exists (the PNG goes next to it). */
function parseMarkdownPath(text: string): string {
  const file = resolve(text);
  if (!/\.md$/i.test(file)) throw new InputError('--markdown', `expected a .md file, got "${text}"`);
  if (!existsSync(dirname(file)) || !statSync(dirname(file)).isDirectory()) {
    throw new InputError('--markdown', `expected a file in an existing folder, got "${text}"`);
  }
  return file;
}

/** `--patterns N`: the pattern rows on the first runnable backend of the run, printed as they come. */
async function runPatterns(n: number, o: BenchOptions, print: boolean): Promise<PatternRow[]> {
  const backend = (await availableBackends(o.backends)).find((b) => !b.skipped)?.name;
  if (!backend) return [];
  const dir = mkdtempSync(join(tmpdir(), 'longattn-bench-patterns-'));
  try {
    if (print) console.log(PATTERN_HEADER);
    return await benchPatterns(
      { n, D: o.D, threads: o.threads, reps: o.reps, dir },
      backend,
      (row) => print && console.log(formatPatternRow(row)),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('GFLOP/s, wall time and peak RSS per backend, with onnxruntime and numpy peers measured in the same run')
    .option('--backends <list>', 'comma-separated backends (default: every registered one that can run here)')
    .option('--sizes <list>', 'sequence lengths', parseIntegerList('--sizes'), [1024, 4096, 16384])
    .option('--heads <list>', 'head counts', parseIntegerList('--heads'), [1, 8])
    .option('--d <D>', 'head dim', parseInteger('--d', 1, 1024), 64)
    .option('--mask <which>', 'dense | causal | both', parseChoice('--mask', ['dense', 'causal', 'both'] as const), 'both')
    .option('--threads <n>', 'threads for longattn and the peers', parseInteger('--threads', 1, 1024), availableParallelism())
    .option('--reps <n>', 'timed runs per row (median reported)', parseInteger('--reps', 1, 100), 3)
    .option('--no-peers', 'skip onnxruntime / numpy peers')
    .option('--budget <seconds>', 'skip rows estimated to take longer', parseInteger('--budget', 1), 60)
    .option('--long <n>', 'also run n tokens, 1 head, causal, on the first backend (memory bound)', parseInteger('--long', 2))
    .option(
      '--patterns <n>',
      'also run full causal, StreamingLLM, Longformer, BigBird and strided at n tokens, 1 head, on the first backend: speedup against 0.8 × area',
      parseInteger('--patterns', 256),
    )
    .option(
      '--layer <n>',
      'also run the layer target: `layer` vs attention alone at n tokens, d_model 1024, 16/4 heads, D 64, causal',
      parseInteger('--layer', 2),
    )
    .option('--json', 'print the rows as one JSON array')
    .option(
      '--markdown <file>',
      'also write FILE (e.g. BENCHMARKS.md): machine, versions, every row; and its plot FILE.png',
      parseMarkdownPath,
    )
    .action(async (flags: BenchFlags) => {
      const started = new Date();
      const load = sampleLoad();
      const machine = machineInfo(flags.threads);
      if (!flags.json) console.log(TABLE_HEADER);
      const options: BenchOptions = {
        backends: flags.backends ? flags.backends.split(',') : [],
        sizes: flags.sizes,
        heads: flags.heads,
        D: flags.d,
        causal: flags.mask === 'both' ? [false, true] : [flags.mask === 'causal'],
        threads: flags.threads,
        reps: flags.reps,
        peers: flags.peers,
        budgetS: flags.budget,
        ...(flags.long ? { long: flags.long } : {}),
        ...(flags.layer ? { layer: flags.layer } : {}),
        log: flags.json ? () => {} : (line) => console.log(line),
      };
      const rows = await runBench(options);
      const patterns = flags.patterns ? await runPatterns(flags.patterns, options, !flags.json) : [];
      if (flags.json) console.log(JSON.stringify([...rows, ...patterns]));
      if (flags.markdown) {
        const command = `longattn ${process.argv.slice(2).join(' ')}`;
        const seconds = (Date.now() - started.getTime()) / 1000;
        const report = { rows, patterns, machine, load: load.stop(), command, options, started, seconds };
        const written = await writeBenchmarks(report, flags.markdown);
        if (!flags.json) console.log(`# wrote ${written.markdown} and ${written.png}`);
      }
    });
}
