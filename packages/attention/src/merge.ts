import type { TilePartial } from './partial.ts';

/**
 * Merges partials of the same query rows into one (docs/math.md):
 *   M = max_t lse_t (0 when every lse is -∞), w_t = exp(lse_t − M), Z = Σ w_t,
 *   lse = M + log Z, O = Σ (w_t / Z) · O_t;  Z = 0 → O = 0, lse = -∞.
 * Partials are taken in ascending kStart order whatever order they come in, and sums run in
 * float64, so the bits depend only on the set of partials. Never NaN for finite inputs; NaN and ±∞
 * partials (--allow-nonfinite) combine as IEEE arithmetic on this formula does (docs/nonfinite.md).
 * `into`: arrays (o [≥ rows·D], lse [≥ rows]) the result is written to instead of new ones, e.g. a
 * pool thread's packed reply (engine packed.ts), which then needs no copy.
 */
export function merge(partials: readonly TilePartial[], into?: Pick<TilePartial, 'o' | 'lse'>): TilePartial {
  if (partials.length === 0) throw new Error('merge: no partials');
  const first = partials[0];
  const { rows, D } = first;
  for (const p of partials) {
    if (p.rows !== rows || p.D !== D) throw new Error(`merge: partial [${p.rows},${p.D}] differs from [${rows},${D}]`);
  }
  const o = into ? into.o.subarray(0, rows * D) : new Float32Array(rows * D);
  const lse = into ? into.lse.subarray(0, rows) : new Float32Array(rows);
  if (partials.length === 1 && !first.rowSpan) {
    mergeOne(first, o, lse, 0, rows); // a q-block of one tile
    return { rows, D, kStart: first.kStart, o, lse };
  }
  const ordered = partials.length === 1 ? partials : [...partials].sort((a, b) => a.kStart - b.kStart);
  if (tilesRows(ordered, rows)) {
    // Row groups that tile the rows, one partial each (BigBird's q-blocks): each row's merge has one term
    for (const p of ordered) mergeOne(p, o, lse, p.rowSpan?.[0] ?? 0, p.rowSpan?.[1] ?? rows);
    return { rows, D, kStart: ordered[0]!.kStart, o, lse };
  }
  if (ordered.every((p) => !p.rowSpan)) {
    mergeWhole(ordered, o, lse); // every partial over every row (StreamingLLM's, causal's q-blocks)
    return { rows, D, kStart: ordered[0]!.kStart, o, lse };
  }
  const n = ordered.length;
  // Plain arrays of the typed arrays: the row loop then indexes them directly (reading
  // ordered[t].lse[r] through the objects was most of a pattern q-block's merge time).
  const lses: Float32Array[] = new Array(n);
  const outs: Float32Array[] = new Array(n);
  // A row group's partial covers rows [from, from+count) (a stride tile's: every rowStep-th of
  // them, partial.ts); outside them it is o = 0, lse = −∞, whose term is skipped: its weight is 0
  // and 0·0 added to acc (never −0: it starts at +0) changes no bit, so skipping gives the bits of
  // merging the widened partial. Each row's partials are listed once (`list`, in merge order), so
  // a q-block of many row groups costs its covered rows, not rows × partials.
  const s = scratchFor(rows, n, D);
  const starts = s.starts;
  starts.fill(0, 0, rows + 1);
  let total = 0;
  for (let t = 0; t < n; t++) {
    const p = ordered[t]!;
    lses[t] = p.lse;
    outs[t] = p.o;
    const [from, count] = p.rowSpan ?? [0, rows];
    const step = p.rowStep ?? 1;
    s.from[t] = from;
    s.count[t] = count;
    s.step[t] = step;
    total += count;
    for (let x = 0, r = from; x < count; x++, r += step) starts[r + 1]!++;
  }
  for (let r = 0; r < rows; r++) starts[r + 1]! += starts[r]!;
  const list = listScratch(total, 0);
  const local = listScratch(total, 1);
  const fill = s.fill;
  fill.set(starts.subarray(0, rows));
  for (let t = 0; t < n; t++) {
    const from = s.from[t]!;
    const count = s.count[t]!;
    const step = s.step[t]!;
    for (let x = 0, r = from; x < count; x++, r += step) {
      const at = fill[r]!++;
      list[at] = t;
      local[at] = x;
    }
  }
  const weights = s.weights;
  const acc = s.acc;
  for (let r = 0; r < rows; r++) {
    const a = starts[r]!;
    const b = starts[r + 1]!;
    const base = r * D;
    if (b - a === 1) {
      // One partial: the formula with M = its finite lse, w = 1, Z = 1 (same bits, fewer steps; see mergeOne)
      const l = lses[list[a]!]![local[a]!]!;
      if (Number.isFinite(l)) {
        lse[r] = l + 0;
        const src = outs[list[a]!]!;
        const at = local[a]! * D;
        for (let d = 0; d < D; d++) o[base + d] = src[at + d]! + 0;
        continue;
      }
    }
    let m = -Infinity;
    for (let x = a; x < b; x++) m = Math.max(m, lses[list[x]!]![local[x]!]!);
    if (m === -Infinity) m = 0; // every partial empty → weights 0, out 0, lse -Infinity
    let z = 0;
    for (let x = a; x < b; x++) {
      const w = Math.exp(lses[list[x]!]![local[x]!]! - m);
      weights[x - a] = w;
      z += w;
    }
    // Z = 0: every weight is 0 and O = Σ 0·O_t, which is 0 unless a partial carries NaN or ±∞ from
    // non-finite inputs; a zero weight is not skipped, so 0·∞ = NaN stays (docs/nonfinite.md).
    lse[r] = z === 0 ? -Infinity : m + Math.log(z);
    const zd = z === 0 ? 1 : z;
    if (a === b) {
      o.fill(0, base, base + D);
      continue;
    }
    // acc starts at +0: the first term is 0 + w·O (so a −0 term gives +0, as adding to a zeroed acc does)
    {
      const w = weights[0]! / zd;
      const src = outs[list[a]!]!;
      const at = local[a]! * D;
      for (let d = 0; d < D; d++) acc[d] = 0 + w * src[at + d]!;
    }
    for (let x = a + 1; x < b; x++) {
      const w = weights[x - a]! / zd;
      const src = outs[list[x]!]!;
      const at = local[x]! * D;
      for (let d = 0; d < D; d++) acc[d] += w * src[at + d]!;
    }
    for (let d = 0; d < D; d++) o[base + d] = acc[d]!;
  }
  return { rows, D, kStart: ordered[0]!.kStart, o, lse };
}

/**
 * Rows [from, from + count) of the output from the one partial that covers them: per row, the
 * formula with one term. A finite lse l gives M = l, w = exp(0) = 1, Z = 1, lse = l + log 1 = l + 0 and O = 0 + (1/1)·O_t = O_t + 0 (float32 values
 * are exact in float64; + 0 turns −0 into +0 as the sum does). Any other lse (−∞, and NaN or +∞
 * under --allow-nonfinite) takes the general steps.
 */
function mergeOne(p: TilePartial, o: Float32Array, lse: Float32Array, from: number, count: number): void {
  const { D } = p;
  const src = p.o;
  for (let x = 0; x < count; x++) {
    const l = p.lse[x]!;
    const r = from + x;
    const base = r * D;
    const at = x * D;
    if (Number.isFinite(l)) {
      lse[r] = l + 0;
      for (let d = 0; d < D; d++) o[base + d] = src[at + d]! + 0;
      continue;
    }
    const m = l === -Infinity ? 0 : l;
    const w = Math.exp(l - m);
    lse[r] = w === 0 ? -Infinity : m + Math.log(w);
    const zw = w === 0 ? 0 : w / w;
    for (let d = 0; d < D; d++) o[base + d] = 0 + zw * src[at + d]!;
  }
}

/** True when the partials' row spans (step 1) cover each of the rows exactly once. */
function tilesRows(ordered: readonly TilePartial[], rows: number): boolean {
  let covered = 0;
  for (const p of ordered) {
    if ((p.rowStep ?? 1) !== 1) return false;
    covered += p.rowSpan?.[1] ?? rows;
  }
  if (covered !== rows) return false;
  const spans = ordered.map((p) => p.rowSpan ?? [0, rows]).sort((a, b) => a[0] - b[0]);
  for (let t = 0, next = 0; t < spans.length; t++) {
    if (spans[t]![0] !== next) return false;
    next += spans[t]![1];
  }
  return true;
}

/**
 * Partials that all cover every row, in merge order: the same operations in the same order as the
 * row loop of merge (M, then Z = 0 + w_0 + w_1 + …, then acc = 0 + w_0/Z·O_0 + …), run partial by
 * partial over all rows: contiguous passes, no per-row lists.
 */
function mergeWhole(ordered: readonly TilePartial[], o: Float32Array, lse: Float32Array): void {
  const { rows, D } = ordered[0]!;
  const n = ordered.length;
  const w = wholeScratch(rows, n, D);
  const m = w.m;
  const z = w.z;
  const weights = w.weights;
  const acc = w.acc;
  m.fill(-Infinity, 0, rows);
  for (let t = 0; t < n; t++) {
    const l = ordered[t]!.lse;
    for (let r = 0; r < rows; r++) m[r] = Math.max(m[r]!, l[r]!);
  }
  for (let r = 0; r < rows; r++) if (m[r] === -Infinity) m[r] = 0; // every partial empty → weights 0, out 0, lse -Infinity
  z.fill(0, 0, rows);
  for (let t = 0; t < n; t++) {
    const l = ordered[t]!.lse;
    const at = t * rows;
    for (let r = 0; r < rows; r++) {
      const x = Math.exp(l[r]! - m[r]!);
      weights[at + r] = x;
      z[r] += x;
    }
  }
  for (let r = 0; r < rows; r++) {
    const zr = z[r]!;
    lse[r] = zr === 0 ? -Infinity : m[r]! + Math.log(zr);
    if (zr === 0) z[r] = 1; // Z = 0: weights 0/1; a zero weight is not skipped (0·∞ = NaN stays, docs/nonfinite.md)
  }
  for (let t = 0; t < n; t++) {
    const src = ordered[t]!.o;
    const at = t * rows;
    for (let r = 0; r < rows; r++) {
      const x = weights[at + r]! / z[r]!;
      const base = r * D;
      if (t === 0) for (let d = base, end = base + D; d < end; d++) acc[d] = 0 + x * src[d]!;
      else for (let d = base, end = base + D; d < end; d++) acc[d] += x * src[d]!;
    }
  }
  for (let d = 0, end = rows * D; d < end; d++) o[d] = acc[d]!;
}

let whole = { m: new Float64Array(0), z: new Float64Array(0), weights: new Float64Array(0), acc: new Float64Array(0) };

function wholeScratch(rows: number, n: number, D: number) {
  if (whole.m.length < rows || whole.weights.length < rows * n || whole.acc.length < rows * D)
    whole = {
      m: new Float64Array(Math.max(rows, whole.m.length)),
      z: new Float64Array(Math.max(rows, whole.z.length)),
      weights: new Float64Array(Math.max(rows * n, whole.weights.length)),
      acc: new Float64Array(Math.max(rows * D, whole.acc.length)),
    };
  return whole;
}

/** Per-thread index buffers of the merge, grown as needed (fresh ones per q-block were garbage). */
let scratch = makeScratch(0, 0, 0);
const lists = [new Int32Array(0), new Int32Array(0)];

function makeScratch(rows: number, n: number, D: number) {
  return {
    rows,
    n,
    D,
    starts: new Int32Array(rows + 1),
    fill: new Int32Array(rows),
    from: new Int32Array(n),
    count: new Int32Array(n),
    step: new Int32Array(n),
    weights: new Float64Array(n),
    acc: new Float64Array(D),
  };
}

function scratchFor(rows: number, n: number, D: number) {
  if (scratch.rows < rows || scratch.n < n || scratch.D < D)
    scratch = makeScratch(Math.max(rows, scratch.rows), Math.max(n, scratch.n), Math.max(D, scratch.D));
  return scratch;
}

function listScratch(length: number, which: 0 | 1): Int32Array {
  if (lists[which]!.length < length) lists[which] = new Int32Array(length);
  return lists[which]!;
}
