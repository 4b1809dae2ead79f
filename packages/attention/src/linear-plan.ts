import type { Plan, PlanOptions, QBlockPlan, Tile } from './planner.ts';
import type { AttentionSpec } from './spec.ts';

/**
 * Default tiles for --linear (docs/math.md, "Linear attention"): a row costs ~4·D² to read a
 * state and, under causal, ~4·D per key of its diagonal part (about (blockQ + blockK)/2 keys),
 * so blocks near D keep the two alike; smaller blocks only add calls.
 */
export const LINEAR_BLOCKS = { blockQ: 64, blockK: 64 } as const;

/**
 * The plan of a linear-attention job, on the same grid and Plan interface as softmax's. Each
 * q-block (rows r0 … r1, positions p = r + Sk − Sq) has at most two tiles, in key order:
 *   - a state tile (full): keys [0, P) that every row sees, read as the sum of the per-key-block
 *     states (key blocks of blockK, summed in order); non-causal: P = Sk;
 *   - under causal, an exact tile (not full): keys [P, p1], each row adding its own keys ≤ p
 *     one by one, with P = ⌊(p0 + 1) / blockK⌋·blockK (the key blocks wholly before the rows).
 * A q-block whose rows see no key (causal, Sq > Sk) has no tile: o = 0.
 * FLOPs: reading a state 2·D·(D+1) per row; 4·D per exact (row, key) pair; building the states
 * 2·D·(D+1) per key, counted once per kv head (at the q-block that first needs the key, shared by
 * the group's query heads).
 */
export function linearPlan(spec: AttentionSpec, { blockQ, blockK }: PlanOptions): Plan {
  const { Sq, Sk, D, causal } = spec;
  const diag = Sk - Sq;
  const perHead = Math.ceil(Sq / blockQ);
  const heads = spec.B * spec.H;
  const group = spec.H / spec.Hk;
  const perRow = 2 * D * (D + 1);
  const rowsOf = (qb: number) => Math.min(blockQ, Sq - qb * blockQ);
  /** Keys [0, P) every row of row block qb sees. */
  const prefixEnd = (qb: number): number => {
    if (qb < 0) return 0;
    if (!causal) return Sk;
    return Math.max(0, Math.floor((qb * blockQ + diag + 1) / blockK) * blockK);
  };
  const tilesAt = (qb: number, b: number, h: number): Tile[] => {
    const qStart = qb * blockQ;
    const rows = rowsOf(qb);
    const kvh = Math.floor(h / group);
    const P = prefixEnd(qb);
    const tiles: Tile[] = [];
    const base = { b, h, kvh, qBlock: qb, qStart, rows };
    if (P > 0) {
      const built = P - prefixEnd(qb - 1);
      tiles.push({ ...base, kBlock: 0, kStart: 0, keys: P, full: true, flops: rows * perRow + (built * perRow) / group });
    }
    const last = Math.min(Sk - 1, qStart + rows - 1 + diag);
    if (causal && last >= P) {
      let pairs = 0;
      for (let r = qStart; r < qStart + rows; r++) pairs += Math.max(0, r + diag - P + 1);
      tiles.push({ ...base, kBlock: P / blockK, kStart: P, keys: last - P + 1, full: false, flops: 4 * D * pairs });
    }
    return tiles;
  };
  const counts = new Float64Array(perHead);
  const flops = new Float64Array(perHead);
  for (let qb = 0; qb < perHead; qb++) {
    const tiles = tilesAt(qb, 0, 0);
    counts[qb] = tiles.length;
    flops[qb] = tiles.reduce((sum, t) => sum + t.flops, 0);
  }
  const locate = (index: number): Omit<QBlockPlan, 'tiles'> => {
    if (!Number.isInteger(index) || index < 0 || index >= perHead * heads)
      throw new RangeError(`q-block ${index} is not in this plan (0 … ${perHead * heads - 1})`);
    const head = Math.floor(index / perHead);
    const qb = index % perHead;
    return { index, b: Math.floor(head / spec.H), h: head % spec.H, qBlock: qb, qStart: qb * blockQ, rows: rowsOf(qb) };
  };
  const block = (index: number): QBlockPlan => {
    const at = locate(index);
    return { ...at, tiles: tilesAt(at.qBlock, at.b, at.h) };
  };
  const sum = (a: Float64Array) => a.reduce((s, x) => s + x, 0);
  return {
    spec,
    blockQ,
    blockK,
    qBlocksPerHead: perHead,
    qBlockCount: perHead * heads,
    tileCount: sum(counts) * heads,
    skippedTiles: 0,
    flops: sum(flops) * heads,
    block,
    *blocks() {
      for (let index = 0; index < perHead * heads; index++) yield block(index);
    },
    locate,
    tilesIn: (index) => counts[locate(index).qBlock]!,
    flopsIn: (index) => flops[locate(index).qBlock]!,
  };
}
