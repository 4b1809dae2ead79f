import type { TilePartial } from '@longattn/attention';

/**
 * The packed form of partial results, written and read only here: one float32 run per
 * q-block or tile, [o (rows·D values), then lse (rows values)], runs back to back. Pool threads
 * reply with it (one transferable buffer), and a tile's stored partial blob is one run.
 * `into`: a buffer of at least packedLength(results) floats to pack into (a reused one: fresh
 * memory per pack costs page faults, queue/buffer-pool.ts); the result is its first that many.
 */
export function packPartials(results: readonly { o: Float32Array; lse: Float32Array }[], into?: Float32Array): Float32Array {
  const length = packedLength(results);
  const packed = into ? into.subarray(0, length) : new Float32Array(length);
  if (packed.length < length) throw new RangeError(`packPartials: ${length} floats do not fit in ${into!.length}`);
  let at = 0;
  for (const { o, lse } of results) {
    packed.set(o, at);
    packed.set(lse, at + o.length);
    at += o.length + lse.length;
  }
  return packed;
}

/** Floats of the packed form of `results`. */
export function packedLength(results: readonly { o: Float32Array; lse: Float32Array }[]): number {
  return results.reduce((n, r) => n + r.o.length + r.lse.length, 0);
}

/**
 * A packed reply for q-blocks of these row counts (in `reuse` when it is large enough, else new),
 * and each one's (o, lse) views into it, for results written in place (merge's `into`, which
 * writes every value) instead of copied by packPartials.
 */
export function packedRuns(
  rows: readonly number[],
  D: number,
  reuse?: Float32Array,
): { packed: Float32Array; runs: { o: Float32Array; lse: Float32Array }[] } {
  const length = rows.reduce((n, r) => n + r * (D + 1), 0);
  // `reuse`: memory of an earlier reply (pages already touched), when it is large enough; every value is overwritten.
  const packed = reuse && reuse.length >= length ? reuse.subarray(0, length) : new Float32Array(length);
  let at = 0;
  const runs = rows.map((r) => {
    const run = { o: packed.subarray(at, at + r * D), lse: packed.subarray(at + r * D, at + r * (D + 1)) };
    at += r * (D + 1);
    return run;
  });
  return { packed, runs };
}

/** Splits packed runs back into partials (views, no copy): one per entry of `blocks`, in order. */
export function unpackPartials(packed: Float32Array, blocks: readonly { rows: number; kStart: number }[], D: number): TilePartial[] {
  const want = blocks.reduce((n, { rows }) => n + rows * (D + 1), 0);
  if (packed.length !== want) throw new Error(`packed partials hold ${packed.length} values, expected ${want}`);
  let at = 0;
  return blocks.map(({ rows, kStart }) => {
    const o = packed.subarray(at, at + rows * D);
    const lse = packed.subarray(at + rows * D, at + rows * D + rows);
    at += rows * D + rows;
    return { rows, D, kStart, o, lse };
  });
}

/** Bytes of one packed run of `rows` rows. */
export function packedBytes(rows: number, D: number): number {
  return rows * (D + 1) * 4;
}
