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
  const ordered = [...partials].sort((a, b) => a.kStart - b.kStart);
  const n = ordered.length;
  // Plain arrays of the typed arrays: the row loop then indexes them directly (reading
  // ordered[t].lse[r] through the objects was most of a pattern q-block's merge time).
  const lses = ordered.map((p) => p.lse);
  const outs = ordered.map((p) => p.o);
  // A row group's partial covers rows [from, from+count) (a stride tile's: every rowStep-th of
  // them, partial.ts); outside them it is o = 0, lse = −∞, whose term is skipped: its weight is 0
  // and 0·0 added to acc (never −0: it starts at +0) changes no bit, so skipping gives the bits of
  // merging the widened partial. Each row's partials are listed once (`list`, in merge order), so
  // a q-block of many row groups costs its covered rows, not rows × partials.
  const starts = new Int32Array(rows + 1);
  const spans = ordered.map((p) => [...(p.rowSpan ?? [0, rows]), p.rowStep ?? 1] as const);
  for (const [from, count, step] of spans) for (let x = 0, r = from; x < count; x++, r += step) starts[r + 1]!++;
  for (let r = 0; r < rows; r++) starts[r + 1]! += starts[r]!;
  const fill = starts.slice(0, rows);
  const list = new Int32Array(starts[rows]!);
  const local = new Int32Array(starts[rows]!);
  for (let t = 0; t < n; t++) {
    const [from, count, step] = spans[t]!;
    for (let x = 0, r = from; x < count; x++, r += step) {
      list[fill[r]!] = t;
      local[fill[r]!++] = x;
    }
  }
  const o = into ? into.o.subarray(0, rows * D) : new Float32Array(rows * D);
  const lse = into ? into.lse.subarray(0, rows) : new Float32Array(rows);
  const weights = new Float64Array(n);
  const acc = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    const a = starts[r]!;
    const b = starts[r + 1]!;
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
    acc.fill(0);
    const base = r * D;
    for (let x = a; x < b; x++) {
      const w = weights[x - a]! / zd;
      const src = outs[list[x]!]!;
      const at = local[x]! * D;
      for (let d = 0; d < D; d++) acc[d] += w * src[at + d]!;
    }
    for (let d = 0; d < D; d++) o[base + d] = acc[d]!;
  }
  return { rows, D, kStart: ordered[0].kStart, o, lse };
}
