import type { Plan } from '@longattn/attention';

/**
 * The local engine's order: heaviest q-blocks first, so the pool drains evenly (the output never
 * depends on the order). Row blocks are ranked once by their tile count, under a stride by their
 * FLOPs (the same for every (b, h)); q-blocks with equal counts keep plan order. Yields q-block indices, never holding
 * more than the ranking: O(q-blocks per head), whatever B·H. `headsInner`: each row block's
 * (b, h) in turn instead (a layer projects a row block's queries once for all its heads).
 */
export function* heaviestFirst(plan: Plan, headsInner = false): Generator<number> {
  const per = plan.qBlocksPerHead;
  const heads = plan.qBlockCount / per;
  const counts = new Float64Array(per);
  // Under a stride, by kernel work instead: a strided q-block's tile count steps with its key chunks
  // while its stride work grows with its row (docs/math.md, "Stride tiles on gathered rows").
  const strided = plan.spec.pattern?.stride !== undefined && !plan.spec.linear;
  for (let qb = 0; qb < per; qb++) counts[qb] = strided ? plan.flopsIn(qb) : plan.tilesIn(qb);
  const rows = Uint32Array.from({ length: per }, (_, qb) => qb).sort((a, b) => counts[b]! - counts[a]! || a - b);
  for (let from = 0; from < per; ) {
    let to = from + 1;
    while (to < per && counts[rows[to]!] === counts[rows[from]!]) to++;
    const tied = rows.subarray(from, to).sort(); // plan order within a tie: head-major, then row block
    if (headsInner) for (const qb of tied) for (let head = 0; head < heads; head++) yield head * per + qb;
    else for (let head = 0; head < heads; head++) for (const qb of tied) yield head * per + qb;
    from = to;
  }
}

/**
 * Consecutive runs of q-block indices of about `flops` of kernel work or `tiles` tiles each,
 * whichever comes first (tiny tiles cost their call, not their FLOPs); at least one q-block per
 * run, and a q-block with no tiles counts as one tile, so masked rows still batch up.
 */
export function* byWork(order: Iterable<number>, plan: Plan, limit: { flops: number; tiles: number }): Generator<number[]> {
  let run: number[] = [];
  let flops = 0;
  let tiles = 0;
  for (const index of order) {
    run.push(index);
    flops += plan.flopsIn(index);
    tiles += Math.max(1, plan.tilesIn(index));
    if (flops >= limit.flops || tiles >= limit.tiles) {
      yield run;
      run = [];
      flops = 0;
      tiles = 0;
    }
  }
  if (run.length > 0) yield run;
}
