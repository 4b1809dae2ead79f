// The package's public entry for other code (the `longattn` command itself starts at bin/longattn.mjs → src/main.ts):
// the bench as a function, and its table format, so a BENCHMARKS.md it wrote can be read back and checked.
export { runBench } from './bench/run-bench.ts';
export type { BenchOptions, BenchRow } from './bench/rows.ts';
export { alignedTable, formatRow, normalizeLine, parseRow, TABLE_HEADER } from './bench/table.ts';
export { benchmarksMarkdown, plotPath, writeBenchmarks } from './bench/markdown.ts';
export type { BenchReport } from './bench/markdown.ts';
