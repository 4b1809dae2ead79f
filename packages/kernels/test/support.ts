import { emptyPartial, maskRule, merge, plan, validateSpec, type AttentionSpec, type Partial, type SpecOptions } from '@longattn/attention';
import type { TileJob, TileKernel } from '@longattn/kernels';

/** Shared by the backend tests: seeded inputs, one head through the planner, the whole head as one tile. */

/** Deterministic uniform numbers in [-2, 2) (mulberry32). */
export function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 4 - 2;
  }
  return out;
}

export interface Case {
  spec: AttentionSpec;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

export function makeCase(Sq: number, Sk: number, D: number, options: SpecOptions = {}, seed = 1): Case {
  const spec = validateSpec({ q: [Sq, D], k: [Sk, D], v: [Sk, D] }, options);
  return { spec, q: random(Sq * D, seed), k: random(Sk * D, seed + 1), v: random(Sk * D, seed + 2) };
}

/** One head ([Sq,D]) through the planner: every tile on `kernel`, merged per q-block in key order. */
export async function attend(
  kernel: TileKernel,
  c: Case,
  blockQ: number,
  blockK: number,
): Promise<{ out: Float32Array; lse: Float32Array }> {
  const { spec } = c;
  const { D } = spec;
  const out = new Float32Array(spec.Sq * D);
  const lse = new Float32Array(spec.Sq);
  for (const qb of plan(spec, { blockQ, blockK }).qBlocks) {
    const partials: Partial[] = [];
    for (const t of qb.tiles) {
      partials.push(
        await kernel.run({
          rows: t.rows,
          keys: t.keys,
          D,
          scale: spec.scale,
          qStart: t.qStart,
          kStart: t.kStart,
          rule: maskRule(spec),
          full: t.full,
          q: c.q.subarray(t.qStart * D, (t.qStart + t.rows) * D),
          k: c.k.subarray(t.kStart * D, (t.kStart + t.keys) * D),
          v: c.v.subarray(t.kStart * D, (t.kStart + t.keys) * D),
        }),
      );
    }
    const m = partials.length ? merge(partials) : emptyPartial(qb.rows, D);
    out.set(m.o, qb.qStart * D);
    lse.set(m.lse, qb.qStart);
  }
  return { out, lse };
}

/** The whole head as one tile (qStart = kStart = 0, full = false: the kernel masks). */
export function wholeJob(c: Case): TileJob {
  const { Sq, Sk, D, scale } = c.spec;
  return { rows: Sq, keys: Sk, D, scale, qStart: 0, kStart: 0, rule: maskRule(c.spec), full: false, q: c.q, k: c.k, v: c.v };
}
