import { rowRule, type RowRule } from './pattern.ts';
import type { Tile } from './planner.ts';
import type { AttentionSpec } from './spec.ts';
import { strideTiles } from './stride-tiles.ts';

type Head = { b: number; h: number; kvh: number };

/**
 * The tiles of row block qb of head h under a sparse pattern (docs/math.md, "Cost follows the
 * pattern"): a tile's cost is its area, so tiles are cut to the visible area instead of a grid.
 *   1. Rows split into row groups: runs of global rows apart from the others (a global row sees
 *      every key; in a group with ordinary rows, every column would be mostly masked), and, under
 *      a block mask, at the mask's block boundaries (each group's rows then share one mask row).
 *   2. Per group, each key is seen by all its rows (full), some (partial) or none (dropped),
 *      found by sweeping the rows' merged intervals: O(rows · intervals · log).
 *   3. Full keys, then partial keys, each in key order, are packed into tiles of ≤ blockK keys
 *      gathered from their runs (`keySpans`): the window's core, the sinks and global keys run
 *      mask-free together; only the band's edges and the causal diagonal run masked.
 * A stride's keys are an arithmetic progression per row: its tiles gather each residue class's
 * rows and keys (stride-tiles.ts).
 */
export function patternTiles(spec: AttentionSpec, blockQ: number, blockK: number, qb: number, rows: number, head: Head): Tile[] {
  const rule = rowRule(spec, head.h);
  const qStart = qb * blockQ;
  if (rule.stride) return strideTiles(spec, blockK, qb, qStart, rows, head, patternTiles);
  const tiles: Tile[] = [];
  for (const [from, count] of rowGroups(spec, qStart, rows)) {
    const rowSpan: Pick<Tile, 'rowSpan'> = count === rows ? {} : { rowSpan: [from, count] };
    const segments = columnSegments(rule, qStart + from, count);
    for (const full of [true, false]) {
      packTiles(spec, segments, full, blockK, count, (keys) =>
        tiles.push({ ...head, qBlock: qb, qStart, rows, kBlock: 0, ...keys, ...rowSpan }),
      );
    }
  }
  // Key order of the first key (ties: row groups in row order) — the order computeQBlock runs and merge sorts by.
  return tiles
    .map((t, n) => ({ t, n }))
    .sort((x, y) => x.t.kStart - y.t.kStart || x.n - y.n)
    .map(({ t }, kBlock) => ({ ...t, kBlock }));
}

/** Row groups [from, count] of the q-block (relative rows): runs of global rows apart, cut at block-mask block boundaries. */
function rowGroups(spec: AttentionSpec, qStart: number, rows: number): [number, number][] {
  const globals = new Set(spec.pattern?.global ?? []);
  const block = spec.pattern?.blockMask?.block ?? 0;
  const groups: [number, number][] = [];
  for (let r = 0; r < rows; r++) {
    const i = qStart + r;
    const cut = r === 0 || globals.has(i) !== globals.has(i - 1) || (block > 0 && i % block === 0);
    if (cut) groups.push([r, 1]);
    else groups[groups.length - 1]![1]++;
  }
  return groups;
}

/** Maximal key runs [a, b) over which `seen` rows of the group see every key (seen > 0), in key order. */
interface Segment {
  a: number;
  b: number;
  seen: number;
}

/** Sweep of the rows' merged intervals: each key's count of rows that see it, as constant runs. */
function columnSegments(rule: RowRule, first: number, count: number): Segment[] {
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = first; i < first + count; i++) {
    const iv = rule.rowIntervals(i);
    for (let x = 0; x < iv.length; x += 2) {
      starts.push(iv[x]!);
      ends.push(iv[x + 1]!);
    }
  }
  const s = Float64Array.from(starts).sort();
  const e = Float64Array.from(ends).sort();
  const segments: Segment[] = [];
  let seen = 0;
  let at = 0;
  for (let x = 0, y = 0; x < s.length || y < e.length; ) {
    const next = y >= e.length || (x < s.length && s[x]! < e[y]!) ? s[x]! : e[y]!;
    if (seen > 0 && next > at) segments.push({ a: at, b: next, seen });
    for (; x < s.length && s[x] === next; x++) seen++;
    for (; y < e.length && e[y] === next; y++) seen--;
    at = next;
  }
  return segments;
}

/**
 * Packs the full (every row of the group sees them) or partial segments, in key order, into tiles
 * of ≤ blockK gathered keys; `emit` gets each tile's keys (kStart = first, keys = total, keySpans
 * when there is more than one run), full flag and flops.
 */
function packTiles(
  spec: AttentionSpec,
  segments: Segment[],
  full: boolean,
  blockK: number,
  count: number,
  emit: (t: Pick<Tile, 'kStart' | 'keys' | 'full' | 'flops' | 'keySpans'>) => void,
): void {
  let spans: number[] = [];
  let keys = 0;
  let pairs = 0;
  const flush = () => {
    if (keys === 0) return;
    emit({ kStart: spans[0]!, keys, full, flops: 4 * pairs * spec.D, ...(spans.length > 2 ? { keySpans: spans } : {}) });
    spans = [];
    keys = 0;
    pairs = 0;
  };
  for (const seg of segments) {
    if ((seg.seen === count) !== full) continue;
    for (let a = seg.a; a < seg.b; ) {
      const b = Math.min(seg.b, a + blockK - keys);
      if (spans.length > 0 && spans[spans.length - 1] === a) spans[spans.length - 1] = b;
      else spans.push(a, b);
      keys += b - a;
      pairs += (b - a) * seg.seen;
      a = b;
      if (keys === blockK) flush();
    }
  }
  flush();
}
