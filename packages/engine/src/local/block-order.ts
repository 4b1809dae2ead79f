import type { Plan } from '@longattn/attention';

/**
 * The local engine's order: heaviest q-blocks first, so the pool drains evenly (the output never
 * depends on the order). Row blocks are ranked once by their tile count (the same for every
 * (b, h)); q-blocks with equal counts keep plan order. Yields q-block indices, never holding
 * more than the ranking: O(q-blocks per head), whatever B·H.
 */
export function* heaviestFirst(plan: Plan): Generator<number> {
  const per = plan.qBlocksPerHead;
  const heads = plan.qBlockCount / per;
  const counts = new Float64Array(per);
  for (let qb = 0; qb < per; qb++) counts[qb] = plan.tilesIn(qb);
  const rows = Uint32Array.from({ length: per }, (_, qb) => qb).sort((a, b) => counts[b]! - counts[a]! || a - b);
  for (let from = 0; from < per; ) {
    let to = from + 1;
    while (to < per && counts[rows[to]!] === counts[rows[from]!]) to++;
    const tied = rows.subarray(from, to).sort(); // plan order within a tie: head-major, then row block
    for (let head = 0; head < heads; head++) for (const qb of tied) yield head * per + qb;
    from = to;
  }
}

/** Consecutive runs of `size` items (the last may be shorter). */
export function* chunked<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let run: T[] = [];
  for (const item of items) {
    run.push(item);
    if (run.length === size) {
      yield run;
      run = [];
    }
  }
  if (run.length > 0) yield run;
}
