import type { AttentionSpec } from './spec.ts';

/**
 * Sparse patterns (docs/math.md, "Patterns"), as the spec carries them (plain JSON: the queue
 * engine's manifest holds them, so every worker plans the same tiles).
 */
export interface Pattern {
  /** Every query also sees keys 0 … sinks−1 (StreamingLLM). */
  sinks?: number;
  /** Global positions, sorted, distinct: query rows I,J,… see every key, every query sees keys I,J,…. */
  global?: number[];
  /** Query i sees key j when (pos(i) − j) mod stride = 0. */
  stride?: number;
  blockMask?: BlockMask;
}

/**
 * Query i sees key j when cell [h′, ⌊i/block⌋, ⌊j/block⌋] ≠ 0, h′ = h when heads > 1, else 0.
 * cells: [heads, nQb, nKb] bytes 0/1, base64 (JSON-safe; bounded in docs/limits.md).
 */
export interface BlockMask {
  block: number;
  heads: number;
  nQb: number;
  nKb: number;
  cells: string;
}

/** True when the spec's visible set is a per-row key interval (no pattern): the fast path. */
export function hasPattern(spec: Pick<AttentionSpec, 'pattern'>): boolean {
  const p = spec.pattern;
  return p !== undefined && (p.sinks !== undefined || p.global !== undefined || p.stride !== undefined || p.blockMask !== undefined);
}

const decoded = new Map<string, Uint8Array>();
/** By mask object first: a Map lookup by another copy of the same cells string compares MBs of text (every q-block's rule asks). */
let lastMask: { mask: BlockMask; cells: Uint8Array } | undefined;

/** The block mask's cells as bytes, decoded once per thread (a few masks kept). */
export function maskCells(mask: BlockMask): Uint8Array {
  if (lastMask?.mask === mask) return lastMask.cells;
  let cells = decoded.get(mask.cells);
  if (!cells) {
    if (decoded.size >= 4) decoded.clear();
    cells = new Uint8Array(Buffer.from(mask.cells, 'base64'));
    decoded.set(mask.cells, cells);
  }
  lastMask = { mask, cells };
  return cells;
}

/**
 * The rule of one (spec, head) as per-row pieces (docs/math.md, "Patterns"): rowIntervals(i) lists
 * the keys row i sees as merged half-open intervals [a, b) (window, sinks, global keys and rows,
 * block-mask cells), all below `limit(i)` (Sk, or pos(i)+1 under causal); a stride adds the keys
 * j < limit(i) with (pos(i) − j) mod stride = 0 on top. No pattern and no window: [0, limit).
 */
export interface RowRule {
  limit(i: number): number;
  rowIntervals(i: number): number[];
  stride: number;
  pos(i: number): number;
}

export function rowRule(spec: AttentionSpec, h: number): RowRule {
  const p = spec.pattern ?? {};
  const { left, right } = spec.window;
  const windowed = left !== Infinity || right !== Infinity;
  const patterned = hasPattern(spec);
  const cells = p.blockMask ? maskCells(p.blockMask) : undefined;
  const globals = new Set(p.global ?? []);
  const globalRuns = runsOf(p.global ?? []); // 16 adjacent globals: one interval per row, not 16
  const pos = (i: number) => i + spec.Sk - spec.Sq;
  const limit = (i: number) => (spec.causal ? Math.max(0, Math.min(spec.Sk, pos(i) + 1)) : spec.Sk);
  const maskRow = (qb: number): number[] => {
    const runs: number[] = [];
    if (!p.blockMask || !cells) return runs;
    const { block, nKb } = p.blockMask;
    const base = ((p.blockMask.heads > 1 ? h : 0) * p.blockMask.nQb + qb) * nKb;
    for (let kb = 0; kb < nKb; kb++) {
      if (!cells[base + kb]) continue;
      if (runs.length > 0 && runs[runs.length - 1] === kb * block) runs[runs.length - 1] = (kb + 1) * block;
      else runs.push(kb * block, (kb + 1) * block);
    }
    return runs;
  };
  let cached = { qb: -1, runs: [] as number[] };
  const rowIntervals = (i: number): number[] => {
    const end = limit(i);
    if ((!patterned && !windowed) || globals.has(i)) return end > 0 ? [0, end] : [];
    const raw: number[] = [];
    const at = pos(i);
    if (windowed) raw.push(left === Infinity ? 0 : at - left, right === Infinity ? spec.Sk : at + right + 1);
    if (p.sinks) raw.push(0, p.sinks);
    raw.push(...globalRuns);
    if (p.blockMask) {
      const qb = Math.floor(i / p.blockMask.block);
      if (cached.qb !== qb) cached = { qb, runs: maskRow(qb) };
      raw.push(...cached.runs);
    }
    return mergeIntervals(raw, end);
  };
  return { limit, rowIntervals, stride: p.stride ?? 0, pos };
}

/** Sorted distinct positions as flat half-open runs [a0, b0, …] of consecutive ones. */
function runsOf(sorted: readonly number[]): number[] {
  const runs: number[] = [];
  for (const g of sorted) {
    if (runs.length > 0 && runs[runs.length - 1] === g) runs[runs.length - 1] = g + 1;
    else runs.push(g, g + 1);
  }
  return runs;
}

/**
 * Flat [a, b) pairs sorted, merged and clipped to [0, end), in place on `raw` (an insertion sort
 * of a few pairs: this runs once per row when planning, where tuple arrays and a comparator sort
 * were most of a pattern plan's time).
 */
function mergeIntervals(raw: number[], end: number): number[] {
  let n = 0;
  for (let x = 0; x < raw.length; x += 2) {
    const a = Math.max(0, raw[x]!);
    const b = Math.min(end, raw[x + 1]!);
    if (b <= a) continue;
    let y = n;
    for (; y > 0 && raw[2 * (y - 1)]! > a; y--) {
      raw[2 * y] = raw[2 * (y - 1)]!;
      raw[2 * y + 1] = raw[2 * (y - 1) + 1]!;
    }
    raw[2 * y] = a;
    raw[2 * y + 1] = b;
    n++;
  }
  let m = 0;
  for (let x = 0; x < n; x++) {
    const a = raw[2 * x]!;
    const b = raw[2 * x + 1]!;
    if (m > 0 && a <= raw[2 * m - 1]!) raw[2 * m - 1] = Math.max(raw[2 * m - 1]!, b);
    else {
      raw[2 * m] = a;
      raw[2 * m + 1] = b;
      m++;
    }
  }
  raw.length = 2 * m;
  return raw;
}

/** Keys j in [a, b) with (pos − j) mod S = 0. */
export function strideCount(pos: number, S: number, a: number, b: number): number {
  if (b <= a) return 0;
  const first = a + ((((pos - a) % S) + S) % S);
  return first >= b ? 0 : Math.floor((b - 1 - first) / S) + 1;
}

/** Keys of [kStart, kEnd) row i sees, from its intervals (rowIntervals(i)) and the stride. */
export function rowVisibleCount(rule: RowRule, i: number, intervals: number[], kStart: number, kEnd: number): number {
  const end = Math.min(kEnd, rule.limit(i));
  let n = 0;
  let inside = 0;
  const S = rule.stride;
  for (let x = 0; x < intervals.length; x += 2) {
    const a = Math.max(kStart, intervals[x]!);
    const b = Math.min(end, intervals[x + 1]!);
    if (b <= a) continue;
    n += b - a;
    if (S) inside += strideCount(rule.pos(i), S, a, b);
  }
  return S ? n + strideCount(rule.pos(i), S, kStart, end) - inside : n;
}

/** First and last key of [kStart, kEnd) row i sees ([Infinity, -Infinity] when none). */
export function rowVisibleSpan(rule: RowRule, i: number, intervals: number[], kStart: number, kEnd: number): [number, number] {
  const end = Math.min(kEnd, rule.limit(i));
  let first = Infinity;
  let last = -Infinity;
  for (let x = 0; x < intervals.length; x += 2) {
    const a = Math.max(kStart, intervals[x]!);
    const b = Math.min(end, intervals[x + 1]!);
    if (b <= a) continue;
    first = Math.min(first, a);
    last = Math.max(last, b - 1);
  }
  const S = rule.stride;
  if (S && end > kStart) {
    const pos = rule.pos(i);
    const lo = kStart + ((((pos - kStart) % S) + S) % S);
    const hi = end - 1 - ((((end - 1 - pos) % S) + S) % S);
    if (lo <= hi) {
      first = Math.min(first, lo);
      last = Math.max(last, hi);
    }
  }
  return [first, last];
}

/**
 * Marks in `out` ([rows, keys], row-major, 1 = visible) which keys [kStart, kStart+keys) each query
 * row [qStart, qStart+rows) of head h sees under the spec's rule (window, causal and patterns):
 * the union of the given patterns (a window counts as one), intersected with j ≤ pos(i) under
 * causal; no pattern and no window: every key.
 */
export function markVisible(
  spec: AttentionSpec,
  h: number,
  qStart: number,
  rows: number,
  kStart: number,
  keys: number,
  out: Uint8Array = new Uint8Array(rows * keys),
): Uint8Array {
  return markVisibleSpans(spec, h, qStart, rows, [kStart, kStart + keys], out);
}

/**
 * markVisible over gathered keys: the columns are the runs of `spans` (flat half-open [a0, b0, …],
 * sorted, disjoint) side by side, so `out` is [rows, Σ (b − a)]. One rule and each row's intervals
 * once per call, whatever the number of runs (a pattern tile gathers the sinks, globals and a
 * band's edges: one markVisible per run rebuilt the rule and the intervals each time).
 */
export function markVisibleSpans(
  spec: AttentionSpec,
  h: number,
  qStart: number,
  rows: number,
  spans: readonly number[],
  out?: Uint8Array,
): Uint8Array {
  let keys = 0;
  for (let x = 0; x < spans.length; x += 2) keys += spans[x + 1]! - spans[x]!;
  const mask = out ?? new Uint8Array(rows * keys);
  mask.fill(0, 0, rows * keys);
  const rule = rowRule(spec, h);
  const S = rule.stride;
  for (let r = 0; r < rows; r++) {
    const i = qStart + r;
    const row = r * keys;
    const iv = rule.rowIntervals(i);
    const end = S ? rule.limit(i) : 0;
    const pos = rule.pos(i);
    // Both lists are sorted: walk them together, each run at its column offset `at`.
    for (let x = 0, y = 0, at = 0; x < spans.length; at += spans[x + 1]! - spans[x]!, x += 2) {
      const a0 = spans[x]!;
      const b0 = spans[x + 1]!;
      while (y < iv.length && iv[y + 1]! <= a0) y += 2;
      for (let z = y; z < iv.length && iv[z]! < b0; z += 2) {
        const a = Math.max(a0, iv[z]!);
        const b = Math.min(b0, iv[z + 1]!);
        if (b > a) mask.fill(1, row + at + a - a0, row + at + b - a0);
      }
      if (S) {
        const stop = Math.min(b0, end);
        for (let j = a0 + ((((pos - a0) % S) + S) % S); j < stop; j += S) mask[row + at + j - a0] = 1;
      }
    }
  }
  return mask;
}

/** True when row i of head h sees at least one key. */
export function rowSeesAny(spec: AttentionSpec, rule: RowRule, i: number): boolean {
  return rowVisibleCount(rule, i, rule.rowIntervals(i), 0, spec.Sk) > 0;
}
