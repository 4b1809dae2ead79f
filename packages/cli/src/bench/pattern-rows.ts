import { join } from 'node:path';
import { blockLayout } from '../block-layouts.ts';
import { writeBlockMask } from '../block-mask.ts';
import { removeInputs, writeInputs } from './inputs.ts';
import { measureRun } from './measure.ts';
import { median } from './peers/peer-common.ts';

/**
 * One sparse-pattern row (docs/math.md, "Cost follows the pattern"): a `longattn run` with the
 * pattern's flags against full causal at the same n, on the same inputs and backend.
 * areaRatio = causal's visible pairs / the pattern's; the target is speedup ≥ 0.8 · areaRatio.
 */
export interface PatternRow {
  who: string;
  pattern: string;
  /** The run's pattern and tile flags, as typed. */
  flags: string;
  n: number;
  H: number;
  D: number;
  /** Tiles dispatched (the plan's tiles; empty ones never are). */
  tiles: number;
  /** Visible (query, key) pairs of full causal over this row's (1 for the baseline). */
  areaRatio: number;
  /** Median compute phase, ms. */
  ms: number;
  /** Visible work only (4·D per visible pair) over ms. */
  gflops: number;
  /** Causal's median ms over this row's. */
  speedup: number;
  /** 0.8 · areaRatio: the speedup the row should reach. */
  target: number;
}

/** The rows' flags: full causal first (the baseline), then the four patterns. */
function patternCases(maskFile: string): { pattern: string; flags: string[] }[] {
  const globals = Array.from({ length: 16 }, (_, g) => g).join(',');
  return [
    { pattern: 'full causal', flags: ['--causal'] },
    { pattern: 'StreamingLLM', flags: ['--causal', '--window', '4095,0', '--sinks', '4'] },
    // Longformer: a 512-token window (256 each side) and 16 global tokens (the first 16: CLS and question), not causal.
    { pattern: 'Longformer', flags: ['--window', '256,256', '--global', globals] },
    // BigBird: `longattn mask bigbird --block 128` (window 1, 1 global block, 3 random blocks per row); 128 keeps the mask ≤ 1M cells at n = 131072.
    { pattern: 'BigBird', flags: ['--block-mask', maskFile, '--mask-block', String(BIGBIRD_BLOCK)] },
    { pattern: 'strided', flags: ['--causal', '--window', '127,0', '--stride', '128'] },
  ];
}

const BIGBIRD_BLOCK = 128;

/**
 * The pattern rows at n tokens, H = 1, on `backend`: each case `reps` `longattn run` processes
 * (median compute phase), the speedup over the first (full causal) and its 0.8·area target.
 */
export async function benchPatterns(
  o: { n: number; D: number; threads: number; reps: number; dir: string },
  backend: string,
  log: (row: PatternRow) => void,
): Promise<PatternRow[]> {
  const files = writeInputs(o.dir, o.n, 1, o.D);
  const maskFile = join(o.dir, 'bigbird.npy');
  const nb = Math.ceil(o.n / BIGBIRD_BLOCK);
  const layout = { nQb: nb, nKb: nb, heads: 1, window: 1, globals: 1, random: 3, seed: 0, stride: 0 };
  writeBlockMask(maskFile, [nb, nb], blockLayout('bigbird', layout));
  const rows: PatternRow[] = [];
  try {
    let causal: { ms: number; flops: number } | undefined;
    for (const c of patternCases(maskFile)) {
      const args = ['--q', files.q, '--k', files.k, '--v', files.v, '--out', join(o.dir, 'out.npy')];
      const runs = [];
      for (let r = 0; r < o.reps; r++)
        runs.push(await measureRun([...args, '--backend', backend, '--threads', String(o.threads), ...c.flags]));
      const ms = median(runs.map((r) => r.result.computeMs));
      const { flops, tiles } = runs[0]!.result;
      causal ??= { ms, flops };
      const areaRatio = causal.flops / flops;
      const row: PatternRow = {
        who: `longattn ${backend}`,
        pattern: c.pattern,
        flags: c.flags.map((f) => (f === maskFile ? 'bigbird.npy' : f)).join(' '),
        n: o.n,
        H: 1,
        D: o.D,
        tiles,
        areaRatio,
        ms,
        gflops: flops / 1e6 / ms,
        speedup: causal.ms / ms,
        target: 0.8 * areaRatio,
      };
      rows.push(row);
      log(row);
    }
  } finally {
    removeInputs(files);
  }
  return rows;
}

/** The pattern table: header, rule and one line per row (markdown). */
export const PATTERN_HEADER =
  '| who | pattern | flags | n | tiles | area ratio | ms (median) | GFLOP/s | speedup | target (0.8 × area) |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|';

export function formatPatternRow(r: PatternRow): string {
  const x = (v: number) => `${v.toFixed(1)}×`;
  const met = r.pattern === 'full causal' ? '' : r.speedup >= r.target ? ' (met)' : ' (missed)';
  return `| ${[r.who, r.pattern, `\`${r.flags}\``, r.n, r.tiles, x(r.areaRatio), r.ms.toFixed(0), r.gflops.toFixed(1), x(r.speedup), x(r.target) + met].join(' | ')} |`;
}
