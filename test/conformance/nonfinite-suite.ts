import test from 'ava';
import { plan, referenceAttention, validateSpec, type AttentionSpec, type SpecOptions } from '@longattn/attention';
import { arraySource, computeQBlock, JobOutputMemory } from '@longattn/engine';
import { uniformF32 } from '@longattn/tensor';
import { bruteAttention, visible } from '../support/reference64.ts';
import { kernelTargets } from './kernel-targets.ts';

/**
 * Non-finite inputs (--allow-nonfinite) on every backend and mode, tiled several ways, against
 * docs/nonfinite.md's formula written here from the document: IEEE arithmetic over the visible keys,
 * the row max raised to the lowest finite value when it is −∞, O = Σ p·v (not divided) when Σp = 0.
 * NaN and ±∞ must match exactly; finite values meet the exactness rule against a float32 run of the
 * same formula. The merge is part of it: small blocks give tiles whose visible scores are all −∞.
 */

interface Case {
  name: string;
  spec: AttentionSpec;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  blocks: [number, number][];
}

function head(Sq: number, Sk: number, D: number, options: SpecOptions, seed: number) {
  // NaN and ±∞ are let through here, as `--allow-nonfinite` does (else the overflow check refuses the rows).
  const spec: AttentionSpec = { ...validateSpec({ q: [Sq, D], k: [Sk, D], v: [Sk, D] }, options), allowNonfinite: true };
  return { spec, q: uniformF32(Sq * D, seed), k: uniformF32(Sk * D, seed + 1), v: uniformF32(Sk * D, seed + 2) };
}

/** Causal, Sq < Sk: a NaN query, a +∞ key (±∞ scores by the sign of q), ±∞ and NaN values seen by some rows only. */
function causalCase(): Case {
  const c = head(29, 41, 13, { causal: true }, 11);
  const D = 13;
  c.q[3 * D + 4] = NaN; // row 3: NaN everywhere
  c.k[10 * D + 2] = Infinity; // key 10 (seen by every row): +∞ score → NaN row, −∞ score → weight 0
  c.v[10 * D + 0] = Infinity; // … and a −∞-score row gets 0·∞ = NaN in column 0
  c.v[25 * D + 5] = -Infinity; // key 25: rows 13… see it (−∞ in column 5); rows 0–12 must not
  c.v[38 * D + 1] = NaN; // key 38: rows 26… only
  return {
    name: 'causal 29×41, D 13',
    ...c,
    blocks: [
      [8, 8],
      [5, 7],
      [64, 64],
    ],
  };
}

/** Window (1, 0), Sq = Sk: row i sees keys i−1, i; rows whose visible scores are all −∞ or mix −∞ with finite ones. */
function windowCase(): Case {
  const c = head(23, 23, 11, { window: { left: 1, right: 0 } }, 21);
  const D = 11;
  c.k[9 * D + 2] = Infinity;
  c.k[10 * D + 2] = Infinity;
  c.v[10 * D + 0] = Infinity;
  c.v[14 * D + 3] = -Infinity; // rows 14, 15 only
  c.q[9 * D + 2] = 1; // row 9 sees keys 8, 9: +∞ score → NaN row
  c.q[10 * D + 2] = -1; // row 10 sees 9, 10: both −∞ → masked-like (O = 0·v: NaN in column 0, 0 elsewhere), LSE −∞
  c.q[11 * D + 2] = -1; // row 11 sees 10 (−∞, v = +∞ in column 0: NaN) and 11 (finite)
  return {
    name: 'window (1,0) 23×23, D 11',
    ...c,
    blocks: [
      [4, 2],
      [3, 5],
      [64, 64],
    ],
  };
}

/** docs/nonfinite.md's formula for one head ([S, D] row-major); `round` = Math.fround gives the float32 run. */
function formula(c: Case, round: (x: number) => number): { out: Float64Array; lse: Float64Array } {
  const { Sq, Sk, D } = c.spec;
  const scale = round(c.spec.scale);
  const window = c.spec.window;
  const vis = { Sq, Sk, causal: c.spec.causal, window: [toCli(window.left), toCli(window.right)] as const };
  const out = new Float64Array(Sq * D);
  const lse = new Float64Array(Sq);
  const lowest = round === Math.fround ? -3.4028234663852886e38 : -Number.MAX_VALUE;
  for (let i = 0; i < Sq; i++) {
    const keys: number[] = [];
    for (let j = 0; j < Sk; j++) if (visible(vis, i, j)) keys.push(j);
    const s = keys.map((j) => {
      let dot = 0;
      for (let d = 0; d < D; d++) dot = round(dot + round(c.q[i * D + d]! * c.k[j * D + d]!));
      return round(dot * scale);
    });
    let m = s.length === 0 ? -Infinity : Math.max(...s); // NaN when a score is NaN
    if (m === -Infinity) m = lowest;
    const p = s.map((x) => round(Math.exp(x - m)));
    const z = p.reduce((a, x) => round(a + x), 0);
    lse[i] = z === 0 ? -Infinity : round(m + Math.log(z));
    for (let d = 0; d < D; d++) {
      let acc = 0;
      keys.forEach((j, n) => {
        acc = round(acc + round(p[n]! * c.v[j * D + d]!));
      });
      out[i * D + d] = z === 0 ? acc : round(acc / z);
    }
  }
  return { out, lse };
}

const toCli = (x: number): number => (Number.isFinite(x) ? x : -1);

/** Every element: NaN ↔ NaN, ±∞ equal, finite within `bound`; returns the first mismatch or null. */
function mismatch(got: ArrayLike<number>, want: Float64Array, bound: number, what: string, D: number): string | null {
  for (let n = 0; n < want.length; n++) {
    const a = got[n]!;
    const b = want[n]!;
    const ok = Number.isNaN(b) ? Number.isNaN(a) : Number.isFinite(b) ? Math.abs(a - b) <= bound : a === b;
    if (!ok) return `${what} [row ${Math.floor(n / D)}, col ${n % D}]: got ${a}, want ${b}`;
  }
  return null;
}

for (const make of [causalCase, windowCase]) {
  const c = make();
  test(`the library reference and the brute force follow docs/nonfinite.md too, ${c.name}`, (t) => {
    const want = formula(c, (x) => x);
    const { Sq, Sk, D, scale, causal, window } = c.spec;
    const brute = bruteAttention(
      { layout: 'bhsd', B: 1, H: 1, Hk: 1, Sq, Sk, D, causal, window: [toCli(window.left), toCli(window.right)], scale },
      c.q,
      c.k,
      c.v,
    );
    const library = referenceAttention(c.spec, c.q, c.k, c.v);
    for (const [name, got] of [
      ['brute force', brute],
      ['referenceAttention', library],
    ] as const) {
      t.is(mismatch(got.out, want.out, 1e-12, `${name} O`, D), null);
      t.is(mismatch(got.lse, want.lse, 1e-12, `${name} LSE`, 1), null);
    }
  });
}

/** Registers the suite for the backends `only` accepts (kernel-targets.ts: why webgpu runs apart). */
export function nonfiniteSuite(only: (backend: string) => boolean): void {
  for (const { label, kernel } of kernelTargets(only)) {
    for (const make of [causalCase, windowCase]) {
      const c = make();
      test.serial(`${label}: non-finite inputs, ${c.name}, as docs/nonfinite.md's formula gives`, async (t) => {
        const ref = formula(c, (x) => x);
        const naive = formula(c, Math.fround);
        t.true(
          ref.out.some(Number.isNaN) && ref.out.includes(-Infinity) && ref.out.some(Number.isFinite),
          'the case reaches NaN, −∞ and finite values',
        );
        let worst = 0;
        for (let n = 0; n < ref.out.length; n++) {
          const d = Math.abs(naive.out[n]! - ref.out[n]!);
          if (Number.isFinite(d)) worst = Math.max(worst, d);
        }
        const bound = 2 * worst + 1e-5; // the exactness rule (docs/math.md) on the finite elements
        const k = await kernel();
        for (const [blockQ, blockK] of c.blocks) {
          const output = new JobOutputMemory(c.spec);
          const source = arraySource(c.spec, c.q, c.k, c.v);
          for (const block of plan(c.spec, { blockQ, blockK }).blocks()) output.write(block, await computeQBlock(k, c.spec, block, source));
          const at = `blocks ${blockQ}×${blockK}`;
          t.is(mismatch(output.out, ref.out, bound, `${at} O`, c.spec.D), null);
          t.is(mismatch(output.lse, ref.lse, 1e-4, `${at} LSE`, 1), null);
        }
      });
    }
  }
}
