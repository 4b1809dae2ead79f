import { hasPattern, rowRule } from './pattern.ts';
import type { Tile } from './planner.ts';
import type { AttentionSpec } from './spec.ts';

/**
 * Band tiles (docs/math.md, "Band tiles"): a q-block whose every row sees the same `shared` keys
 * plus its own window [pos(i) − left, pos(i) + right], run without the band's corners. The rows
 * are cut in sub-blocks of `sub` rows; sub-block s (rows from + s·sub …) gets the shared keys and
 * its own window's keys [pos(a) − left, pos(a) + sub − 1 + right] (a its first row), gathered
 * into [B, K, D] with K = sharedKeys + sub − 1 + width, width = left + right + 1; row x of a
 * sub-block sees columns [0, sharedKeys) and [sharedKeys + x, sharedKeys + x + width): one
 * positional mask for every sub-block. Kernels that run bands (TileKernel.band) take the tile as
 * one batched call; the others run `parts`, the q-block's tiles as planned without bands.
 */
export interface Band {
  /** Rows per sub-block (the q-block's rows are a multiple). */
  sub: number;
  /** Keys every row sees outside its window, flat half-open runs [a0, b0, …] in key order (sinks, global keys). */
  shared: number[];
  /** The window: row i sees keys pos(i) − left … pos(i) + right (causal: right ≤ 0). */
  left: number;
  right: number;
  /** The q-block's tiles without bands, for kernels without a band path (same qStart, rows and rowSpan as the band tile). */
  parts: Tile[];
}

/**
 * Rows per sub-block. Measured (scripts/bench-band-graph.ts: ort, one thread, graph calls alone,
 * 256 rows): 64 was best or within noise of the best for windows (256, 256) + 16 globals and
 * (127, 0) causal; 16 and 32 pay more per call, 128 computes 2× the corners.
 */
export const BAND_SUB_ROWS = 64;

/**
 * Widest window run as a band: beyond it the window's core (keys every row of the q-block sees)
 * is most of the tile and runs faster mask-free, as the tiles without bands run it. Measured
 * (scripts/bench-band-graph.ts, causal windows, CPU ms per 256-row q-block, band / without):
 * width 512 0.48–0.54 / 0.58–1.2, 768 0.71 / 1.36, 1024 0.93–1.00 / 0.91–0.97 (even),
 * 2048 2.1–2.3 / 1.6–1.7, 4096 4.6–5.3 / 3.9–4.5 (StreamingLLM keeps its tiles). Wider bands as
 * one sub-block on ort's MultiHeadAttention (docs/math.md, "Sole tiles") were tried and not kept.
 */
export const MAX_BAND_WIDTH = 1024;

/**
 * The band tile replacing `parts` (the tiles of rows [qStart, qStart+rows) of one head, planned
 * without bands), or undefined when these rows are not a band: a stride or a block mask, an
 * unbounded or too wide window, more than blockK keys, rows not a multiple of BAND_SUB_ROWS, a row whose keys are not
 * exactly the shared keys plus its window (global rows, windows cut by the sequence's ends,
 * shared keys touching a window) — checked row by row against the pattern's own intervals.
 */
export function bandTile(spec: AttentionSpec, blockK: number, qStart: number, rows: number, parts: Tile[]): Tile | undefined {
  const first = parts[0];
  if (!first || parts.some((t) => t.rowSpan || t.rowStep)) return undefined;
  // Without a pattern the plan counts a q-block's tiles by formula (planner.ts): a band then replaces exactly one tile.
  if (!hasPattern(spec) && parts.length !== 1) return undefined;
  const left = spec.window.left;
  const right = spec.causal ? Math.min(spec.window.right, 0) : spec.window.right;
  const width = left + right + 1;
  const sub = BAND_SUB_ROWS;
  if (spec.pattern?.stride || spec.pattern?.blockMask || !Number.isFinite(width) || width < 1 || width > MAX_BAND_WIDTH) return undefined;
  if (rows % sub !== 0) return undefined;
  const rule = rowRule(spec, first.h);
  const lo = rule.pos(qStart) - left;
  const hi = rule.pos(qStart + rows - 1) + right; // the band's keys: [lo, hi]
  if (lo < 0 || hi >= spec.Sk) return undefined;
  const shared = withoutWindow(rule.rowIntervals(qStart), lo, lo + width);
  if (!shared || shared.some((x) => x >= lo && x <= hi + 1)) return undefined; // a shared run inside or touching the band
  for (let i = qStart + 1; i < qStart + rows; i++) {
    const a = rule.pos(i) - left;
    const rest = withoutWindow(rule.rowIntervals(i), a, a + width);
    if (!rest || rest.length !== shared.length || rest.some((x, n) => x !== shared[n])) return undefined;
  }
  const sharedKeys = shared.reduce((n, x, at) => n + (at % 2 === 0 ? -x : x), 0);
  const keySpans = [...shared.filter((x) => x < lo), lo, hi + 1, ...shared.filter((x) => x > hi)];
  const keys = sharedKeys + hi + 1 - lo;
  if (keys > blockK) return undefined; // a tile holds ≤ blockK keys (the plan's promise)
  return {
    b: first.b,
    h: first.h,
    kvh: first.kvh,
    qBlock: first.qBlock,
    qStart,
    rows,
    kBlock: 0,
    kStart: keySpans[0]!,
    keys,
    full: false,
    flops: 4 * rows * (sharedKeys + width) * spec.D,
    ...(keySpans.length > 2 ? { keySpans } : {}),
    band: { sub, shared, left, right, parts },
  };
}

/** A row's intervals with its window [a, b) taken out, or undefined when [a, b) is not one of them whole. */
function withoutWindow(intervals: number[], a: number, b: number): number[] | undefined {
  const at = intervals.findIndex((x, n) => n % 2 === 0 && x === a && intervals[n + 1] === b);
  return at < 0 ? undefined : [...intervals.slice(0, at), ...intervals.slice(at + 2)];
}
