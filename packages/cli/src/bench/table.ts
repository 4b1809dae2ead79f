import type { BenchRow } from './rows.ts';

/**
 * The bench's markdown table: the header, one line per row, and the inverse (`parseRow`), so a
 * table written by `longattn bench` can be read back and checked (test/cli/bench.test.ts).
 */
export const TABLE_HEADER =
  '| who | n | H | D | mask | ms (median) | process ms | GFLOP/s | peak RSS MB |\n|---|---:|---:|---:|---|---:|---:|---:|---:|';

export function formatRow(r: BenchRow): string {
  const mask = r.causal ? 'causal' : 'dense';
  if (r.skipped) return `| ${r.who} | ${r.n} | ${r.H} | ${r.D} | ${mask} | skipped: ${r.skipped} | | | |`;
  const gflops = r.gflops! < 9.95 ? r.gflops!.toPrecision(2) : r.gflops!.toFixed(1); // two digits at least, as parseRow reads back
  const cells = [r.ms!.toFixed(1), r.processMs?.toFixed(0) ?? '', gflops, r.peakRssMB!.toFixed(0)];
  return `| ${r.who} | ${r.n} | ${r.H} | ${r.D} | ${mask} | ${cells.join(' | ')} |`;
}

/** A line formatRow wrote, back as a row (numbers as printed); undefined for any other line. */
export function parseRow(line: string): BenchRow | undefined {
  const cells = line.split('|').map((c) => c.trim());
  if (cells.length !== 11 || cells[0] !== '' || cells[10] !== '') return undefined;
  const [who, n, H, D, mask, ms, processMs, gflops, rss] = cells.slice(1, 10) as [string, ...string[]];
  if (!/^\d+$/.test(n!) || !/^\d+$/.test(H!) || !/^\d+$/.test(D!) || (mask !== 'dense' && mask !== 'causal')) return undefined;
  const row: BenchRow = { who, n: Number(n), H: Number(H), D: Number(D), causal: mask === 'causal' };
  if (ms!.startsWith('skipped: ')) return { ...row, skipped: ms!.slice('skipped: '.length) };
  return {
    ...row,
    ms: Number(ms),
    ...(processMs ? { processMs: Number(processMs) } : {}),
    gflops: Number(gflops),
    peakRssMB: Number(rss),
  };
}
