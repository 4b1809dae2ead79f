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
}

/** A partial for `rows` rows that saw no key: o = 0, lse = -Infinity. */
export function emptyPartial(rows: number, D: number, kStart = 0): TilePartial {
  return { rows, D, kStart, o: new Float32Array(rows * D), lse: new Float32Array(rows).fill(-Infinity) };
}
