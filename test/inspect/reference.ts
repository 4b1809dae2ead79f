import { visible as bruteVisible, type BruteSpec } from '../support/reference64.ts';

/**
 * The inspect report computed the slow, obvious way, in float64, from the definitions in
 * docs/contracts.md ("Attention patterns"), materialising each head's small Sq×Sk weight matrix:
 *   visible(i, j): the brute-force mask of test/support/reference64.ts (causal, window, and the
 *   pattern flags' union), pos(i) = i + Sk − Sq
 *   s_ij = scale · q_i·k_j,  lse_i = log Σ_visible exp(s_ij),  p_ij = exp(s_ij − lse_i)
 * Shares nothing with the engine's code.
 */
export interface RefProblem extends Pick<BruteSpec, 'sinks' | 'global' | 'stride' | 'blockMask'> {
  layout: 'bhsd' | 'bshd';
  B: number;
  H: number;
  Hk: number;
  Sq: number;
  Sk: number;
  D: number;
  causal: boolean;
  /** As the CLI takes it: −1 = unbounded. */
  window?: [number, number];
  scale?: number;
  q: Float32Array;
  k: Float32Array;
}

export interface RefHead {
  b: number;
  h: number;
  rows: number;
  entropy: number | null;
  meanDistance: number | null;
  sinkShare: number | null;
  localShare: number | null;
  /** [Sq][Sk] weights (0 where masked); lse [Sq] (-Infinity: sees no key). */
  p: Float64Array[];
  lse: Float64Array;
  received: Float64Array;
}

function at(layout: 'bhsd' | 'bshd', b: number, h: number, heads: number, S: number, D: number, i: number): number {
  return layout === 'bhsd' ? ((b * heads + h) * S + i) * D : ((b * S + i) * heads + h) * D;
}

/** Whether query i of head h sees key j (reference64.ts's definitions). */
export function visible(pr: RefProblem, i: number, j: number, h: number): boolean {
  return bruteVisible(pr, i, j, h);
}

export function referenceInspect(pr: RefProblem, sinks: number, local: number): RefHead[] {
  const scale = pr.scale ?? 1 / Math.sqrt(pr.D);
  const heads: RefHead[] = [];
  for (let b = 0; b < pr.B; b++) {
    for (let h = 0; h < pr.H; h++) {
      const kvh = Math.floor(h / (pr.H / pr.Hk));
      const p: Float64Array[] = [];
      const lse = new Float64Array(pr.Sq);
      const received = new Float64Array(pr.Sk);
      let rows = 0;
      let ent = 0;
      let dist = 0;
      let sink = 0;
      let loc = 0;
      for (let i = 0; i < pr.Sq; i++) {
        const s = new Float64Array(pr.Sk).fill(-Infinity);
        for (let j = 0; j < pr.Sk; j++) {
          if (!visible(pr, i, j, h)) continue;
          let dot = 0;
          const qo = at(pr.layout, b, h, pr.H, pr.Sq, pr.D, i);
          const ko = at(pr.layout, b, kvh, pr.Hk, pr.Sk, pr.D, j);
          for (let d = 0; d < pr.D; d++) dot += pr.q[qo + d]! * pr.k[ko + d]!;
          s[j] = scale * dot;
        }
        const m = Math.max(...s);
        let z = 0;
        for (const x of s) z += Math.exp(x - m);
        lse[i] = m === -Infinity ? -Infinity : m + Math.log(z);
        const row = new Float64Array(pr.Sk);
        p.push(row);
        if (lse[i] === -Infinity) continue;
        rows++;
        const pos = i + pr.Sk - pr.Sq;
        for (let j = 0; j < pr.Sk; j++) {
          if (s[j] === -Infinity) continue;
          const w = Math.exp(s[j]! - lse[i]!);
          row[j] = w;
          received[j] += w;
          if (w > 0) ent -= w * Math.log(w);
          dist += w * Math.abs(pos - j);
          if (j < sinks) sink += w;
          if (Math.abs(pos - j) <= local) loc += w;
        }
      }
      const avg = (x: number) => (rows ? x / rows : null);
      heads.push({ b, h, rows, entropy: avg(ent), meanDistance: avg(dist), sinkShare: avg(sink), localShare: avg(loc), p, lse, received });
    }
  }
  return heads;
}

/** Top-k keys of a weight row among visible keys: by p descending, ties to the lower j. */
export function referenceTop(pr: RefProblem, h: number, i: number, row: Float64Array, k: number): [number, number][] {
  const keys: [number, number][] = [];
  for (let j = 0; j < row.length; j++) if (visible(pr, i, j, h)) keys.push([j, row[j]!]);
  keys.sort((x, y) => y[1] - x[1] || x[0] - y[0]);
  return keys.slice(0, k);
}

/** Mean p over each cell of an N_r × N_c grid (cell of x among n: ⌊x·N/n⌋), masked pairs as 0. */
export function referenceMap(pr: RefProblem, head: RefHead, nr: number, nc: number): Float64Array {
  const sum = new Float64Array(nr * nc);
  const count = new Float64Array(nr * nc);
  for (let i = 0; i < pr.Sq; i++) {
    for (let j = 0; j < pr.Sk; j++) {
      const c = Math.floor((i * nr) / pr.Sq) * nc + Math.floor((j * nc) / pr.Sk);
      sum[c] += head.p[i]![j]!;
      count[c] += 1;
    }
  }
  return sum.map((x, c) => x / count[c]!);
}
