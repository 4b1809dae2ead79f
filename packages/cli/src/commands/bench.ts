import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { runBench, TABLE_HEADER } from '../bench/bench.ts';
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
  json?: boolean;
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
    .option('--json', 'print the rows as one JSON array')
    .action(async (flags: BenchFlags) => {
      if (!flags.json) console.log(TABLE_HEADER);
      const rows = await runBench({
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
        log: flags.json ? () => {} : (line) => console.log(line),
      });
      if (flags.json) console.log(JSON.stringify(rows));
    });
}
