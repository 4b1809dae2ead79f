import test from 'ava';
import { plan, validateSpec, type AttentionSpec, type SpecOptions } from '@longattn/attention';
import { arraySource, computeQBlock, JobOutputMemory, type BlockSource } from '@longattn/engine';
import { CASES } from '../support/cases.ts';
import { prepare } from '../support/exactness.ts';
import { randomTensor } from '../support/random.ts';
import { bruteAttention, type BruteSpec } from '../support/reference64.ts';
import type { KernelTarget } from './kernel-targets.ts';

/**
 * The V-free tile (TileKernel.lse, tileLse's default where a backend has none) — inspect's first
 * pass, docs/math.md "Attention patterns" — on one backend: every q-block through computeQBlock's
 * `'lse'` path, on the odd shapes of CASES and on sparse patterns (partial tiles with `visible`,
 * row groups, gathered keys), against the float64 LSE from the definitions (exactness rule: ≤ 1e-4,
 * −∞ exactly for the rows that see no key), reading no value (the source's `values` throws), and
 * bitwise the LSE of the full tiles (`run`'s), which is what keeps inspect's report the same bits
 * whichever pass found the LSE.
 */
export function lseTests({ label, backend, kernel }: KernelTarget): void {
  const cases: {
    name: string;
    spec: AttentionSpec;
    q: Float32Array;
    k: Float32Array;
    v: Float32Array;
    ref: ArrayLike<number>;
    blocks: { blockQ: number; blockK: number };
  }[] = [];
  for (const c of CASES) {
    const p = prepare(c);
    const blocks = { blockQ: c.blockQ ?? backend.defaultBlocks.blockQ, blockK: c.blockK ?? backend.defaultBlocks.blockK };
    cases.push({ name: c.name, spec: p.spec, q: p.q, k: p.k, v: p.v, ref: p.ref.lse, blocks });
  }
  for (const c of PATTERNS) cases.push({ name: c.name, ...patternCase(c), blocks: { blockQ: 13, blockK: 17 } });
  for (const c of cases) {
    test.serial(`${label}: LSE-only tiles: ${c.name}`, async (t) => {
      const k = await kernel();
      const thePlan = plan(c.spec, c.blocks);
      const full = new JobOutputMemory(c.spec);
      const lseOnly = new Float32Array(c.spec.B * c.spec.H * c.spec.Sq);
      const source = arraySource(c.spec, c.q, c.k, c.v);
      const noValues: BlockSource = {
        ...source,
        values: () => {
          throw new Error('the LSE-only pass read a value block');
        },
      };
      for (const block of thePlan.blocks()) {
        full.write(block, await computeQBlock(k, c.spec, block, source));
        const part = await computeQBlock(k, c.spec, block, noValues, undefined, undefined, 'lse');
        t.is(part.D, 0, 'an LSE-only q-block has no o');
        lseOnly.set(part.lse, (block.b * c.spec.H + block.h) * c.spec.Sq + block.qStart);
      }
      let err = 0;
      for (let i = 0; i < lseOnly.length; i++) {
        const want = c.ref[i]!;
        if (want === -Infinity) {
          if (lseOnly[i] !== -Infinity) t.fail(`row ${i} sees no key: lse ${lseOnly[i]}, want -Infinity`);
        } else if (!Number.isFinite(lseOnly[i]!)) t.fail(`row ${i}: lse ${lseOnly[i]}, want ${want}`);
        else err = Math.max(err, Math.abs(lseOnly[i]! - want));
      }
      t.true(err <= 1e-4, `max |lse − lse_ref| = ${err} exceeds 1e-4 (docs/math.md, "Exactness rule")`);
      t.true(Buffer.from(lseOnly.buffer).equals(Buffer.from(full.lse.buffer)), 'LSE bits differ from the full tiles’');
    });
  }
}

interface PatternCase {
  name: string;
  H: number;
  Hk: number;
  Sq: number;
  Sk: number;
  D: number;
  causal: boolean;
  window?: [number, number];
  sinks?: number;
  global?: number[];
  stride?: number;
}

/** Sparse patterns on odd shapes: partial tiles carry `visible`, row groups and gathered keys at blocks 13×17. */
const PATTERNS: PatternCase[] = [
  {
    name: 'GQA causal + sinks 3 + stride 5 + globals 7,40, Sq < Sk, 47×61 d6',
    H: 4,
    Hk: 2,
    Sq: 47,
    Sk: 61,
    D: 6,
    causal: true,
    sinks: 3,
    stride: 5,
    global: [7, 40],
  },
  {
    name: 'window (6,0) + sinks 2, Sq > Sk (rows that see nothing), 95×61 d9',
    H: 1,
    Hk: 1,
    Sq: 95,
    Sk: 61,
    D: 9,
    causal: true,
    window: [6, 0],
    sinks: 2,
  },
];

function patternCase(c: PatternCase): { spec: AttentionSpec; q: Float32Array; k: Float32Array; v: Float32Array; ref: Float64Array } {
  const pattern = {
    ...(c.sinks !== undefined ? { sinks: c.sinks } : {}),
    ...(c.global ? { global: c.global } : {}),
    ...(c.stride ? { stride: c.stride } : {}),
  };
  const options: SpecOptions = { causal: c.causal, ...(c.window ? { window: { left: c.window[0], right: c.window[1] } } : {}), pattern };
  const spec = validateSpec({ q: [c.H, c.Sq, c.D], k: [c.Hk, c.Sk, c.D], v: [c.Hk, c.Sk, c.D] }, options);
  const q = randomTensor(c.H * c.Sq * c.D, 31);
  const k = randomTensor(c.Hk * c.Sk * c.D, 32);
  const v = randomTensor(c.Hk * c.Sk * c.D, 33);
  const brute: BruteSpec = {
    layout: 'bhsd',
    B: 1,
    H: c.H,
    Hk: c.Hk,
    Sq: c.Sq,
    Sk: c.Sk,
    D: c.D,
    causal: c.causal,
    ...(c.window ? { window: c.window } : {}),
    ...pattern,
  };
  return { spec, q, k, v, ref: bruteAttention(brute, q, k, v).lse };
}
