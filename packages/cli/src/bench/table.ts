import type { BenchRow } from './rows.ts';

/**
 * The bench's markdown table: the header, one line per row, and the inverse (`parseRow`), so a
 * table written by `longattn bench` can be read back and checked (test/cli/bench.test.ts).
 */
export const TABLE_HEADER =
  '| who | n | H | D | mask | ms (median) | process ms | GFLOP/s | peak RSS MB |\n|---|---:|---:|---:|---|---:|---:|---:|---:|';

const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;

/** The cells of a table line, trimmed: `| a |  b |` → ['a', 'b']. */
const cellsOf = (text: string): string[] =>
  text
    .trim()
    .slice(1, -1)
    .split('|')
    .map((c) => c.trim());

function rowCells(r: BenchRow): string[] {
  const head = [r.who, String(r.n), String(r.H), String(r.D), r.causal ? 'causal' : 'dense'];
  if (r.skipped) return [...head, `skipped: ${r.skipped.replace(/\|/g, '/')}`, '', '', ''];
  const gflops = r.gflops! < 9.95 ? r.gflops!.toPrecision(2) : r.gflops!.toFixed(1); // two digits at least, as parseRow reads back
  return [...head, r.ms!.toFixed(1), r.processMs?.toFixed(0) ?? '', gflops, r.peakRssMB!.toFixed(0)];
}

/** One row as the bench prints it (a `|` in a skip reason becomes `/`). */
export const formatRow = (r: BenchRow): string => line(rowCells(r));

/** A table line as formatRow writes it, whatever its padding: cells trimmed, joined by ' | '. */
export const normalizeLine = (text: string): string => line(cellsOf(text));

/**
 * A table as BENCHMARKS.md holds it: `header` (its head and rule lines) and the lines under it,
 * padded into aligned columns (text left, numbers right, as the rule says), the way the repo's
 * formatter (biome) lays out markdown tables, so a written file needs no reformatting.
 */
export function alignLines(header: string, lines: readonly string[]): string {
  const [head, rule] = header.split('\n') as [string, string];
  const right = cellsOf(rule).map((c) => c.endsWith(':'));
  const body = [cellsOf(head), ...lines.map(cellsOf)];
  const width = right.map((_, i) => Math.max(3, ...body.map((cells) => [...cells[i]!].length)));
  const pad = (cell: string, i: number) => {
    const fill = ' '.repeat(width[i]! - [...cell].length);
    return right[i] ? fill + cell : cell + fill;
  };
  const ruleCells = width.map((w, i) => (right[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w)));
  return [line(body[0]!.map(pad)), line(ruleCells), ...body.slice(1).map((cells) => line(cells.map(pad)))].join('\n');
}

/** The bench rows' table, aligned (TABLE_HEADER, formatRow's cells). */
export const alignedTable = (rows: readonly BenchRow[]): string => alignLines(TABLE_HEADER, rows.map(formatRow));

/** A line formatRow wrote (padded or not), back as a row (numbers as printed); undefined for any other line. */
export function parseRow(text: string): BenchRow | undefined {
  if (!text.trim().startsWith('|') || !text.trim().endsWith('|')) return undefined;
  const cells = cellsOf(text);
  if (cells.length !== 9) return undefined;
  const [who, n, H, D, mask, ms, processMs, gflops, rss] = cells as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!/^\d+$/.test(n) || !/^\d+$/.test(H) || !/^\d+$/.test(D) || (mask !== 'dense' && mask !== 'causal')) return undefined;
  const row: BenchRow = { who, n: Number(n), H: Number(H), D: Number(D), causal: mask === 'causal' };
  if (ms.startsWith('skipped: ')) return { ...row, skipped: ms.slice('skipped: '.length) };
  return { ...row, ms: Number(ms), ...(processMs ? { processMs: Number(processMs) } : {}), gflops: Number(gflops), peakRssMB: Number(rss) };
}
