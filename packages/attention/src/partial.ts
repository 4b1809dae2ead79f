/**
 * The result of attention over a subset of keys, for a block of query rows of one head.
 *
 *   o:   [rows, D] float32, normalised over the tile's keys (0 where the row saw no key)
 *   lse: [rows]    float32 natural-log log-sum-exp of the row's scaled, masked scores;
 *                  -Infinity when the row saw no key
 *   kStart: first key of the range it covers — merge sorts by it, so the merge order (and
 *           therefore every output bit) never depends on arrival order.
 */
export interface TilePartial {
  rows: number;
  D: number;
  kStart: number;
  o: Float32Array;
  lse: Float32Array;
  /**
   * A row group's partial (pattern tiles): o [count, D] and lse [count] hold rows
   * [from, from+count) only; every other row of the `rows` is o = 0, lse = -Infinity (it saw no
   * key here). merge reads it as such, exactly; widenPartial gives the full form. Absent: all rows.
   */
  rowSpan?: [from: number, count: number];
  /** A stride tile's partial: its rowSpan's rows are from, from+rowStep, … (count of them). Absent: 1. */
  rowStep?: number;
}

/** A row group's partial as the full form, [rows, D] with o = 0, lse = -Infinity outside its span (stored blobs hold this). */
export function widenPartial(part: TilePartial): TilePartial {
  if (!part.rowSpan) return part;
  const [from, count] = part.rowSpan;
  const step = part.rowStep ?? 1;
  const out = emptyPartial(part.rows, part.D, part.kStart);
  for (let r = 0; r < count; r++) {
    out.o.set(part.o.subarray(r * part.D, (r + 1) * part.D), (from + r * step) * part.D);
    out.lse[from + r * step] = part.lse[r]!;
  }
  return out;
}

/** A partial for `rows` rows that saw no key: o = 0, lse = -Infinity. */
export function emptyPartial(rows: number, D: number, kStart = 0): TilePartial {
  return { rows, D, kStart, o: new Float32Array(rows * D), lse: new Float32Array(rows).fill(-Infinity) };
}
