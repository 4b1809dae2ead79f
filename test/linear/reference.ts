/**
 * Linear attention straight from its definition (docs/contracts.md `--linear`, docs/math.md "Linear attention"),
 * written here independently of packages/attention: for each row, over the keys it may see,
 *   o_i = Σ_j φ(q_i)·φ(k_j) v_j / (Σ_j φ(q_i)·φ(k_j) + 1e-6),   φ(x) = elu(x) + 1,
 * once in float64 (the reference) and once naively in float32 (every operation rounded: the
 * baseline the tolerance is taken from, as the exactness rule does for softmax).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeTensor } from '@longattn/tensor';
import { randomTensor } from '../support/random.ts';

export interface LinearCase {
  name: string;
  layout: 'bhsd' | 'bshd';
  B: number;
  H: number;
  Hk: number;
  Sq: number;
  Sk: number;
  D: number;
  causal: boolean;
  blockQ?: number;
  blockK?: number;
}

const elu1 = (x: number) => (x > 0 ? x + 1 : Math.exp(x));

/** Flat index of row i, element 0, of head h in batch b, for a tensor of `heads` heads and `S` rows. */
export function at(c: LinearCase, b: number, h: number, heads: number, S: number, i: number): number {
  return c.layout === 'bhsd' ? ((b * heads + h) * S + i) * c.D : ((b * S + i) * heads + h) * c.D;
}

export function shapes(c: LinearCase): { q: number[]; k: number[] } {
  return c.layout === 'bhsd'
    ? { q: [c.B, c.H, c.Sq, c.D], k: [c.B, c.Hk, c.Sk, c.D] }
    : { q: [c.B, c.Sq, c.H, c.D], k: [c.B, c.Sk, c.Hk, c.D] };
}

/** The last key row i may see (−1: none). */
export function lastKey(c: LinearCase, i: number): number {
  return c.causal ? Math.min(c.Sk - 1, i + c.Sk - c.Sq) : c.Sk - 1;
}

/** O in Q's layout, float64 (f = identity) or naive float32 (f = Math.fround). */
export function linearAttention(
  c: LinearCase,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  f: (x: number) => number = (x) => x,
): Float64Array {
  const out = new Float64Array(q.length);
  const { B, H, Hk, Sq, Sk, D } = c;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / Hk));
      for (let i = 0; i < Sq; i++) {
        const qi = at(c, b, h, H, Sq, i);
        const num = new Float64Array(D);
        let den = 0;
        for (let j = 0; j <= lastKey(c, i); j++) {
          const kj = at(c, b, kvh, Hk, Sk, j);
          let w = 0;
          for (let d = 0; d < D; d++) w = f(w + f(f(elu1(q[qi + d]!)) * f(elu1(k[kj + d]!))));
          den = f(den + w);
          for (let d = 0; d < D; d++) num[d] = f(num[d]! + f(w * v[kj + d]!));
        }
        for (let d = 0; d < D; d++) out[qi + d] = f(num[d]! / f(den + 1e-6));
      }
    }
  }
  return out;
}

/** Inputs of a case written as .npy in `dir`, with the float64 reference and the tolerance. */
export function writeCase(dir: string, c: LinearCase, seed = 7) {
  mkdirSync(dir, { recursive: true });
  const s = shapes(c);
  const size = (x: number[]) => x.reduce((a, b) => a * b, 1);
  const q = randomTensor(size(s.q), seed);
  const k = randomTensor(size(s.k), seed + 1);
  const v = randomTensor(size(s.k), seed + 2);
  const paths = { q: join(dir, `${c.name}-q.npy`), k: join(dir, `${c.name}-k.npy`), v: join(dir, `${c.name}-v.npy`) };
  writeTensor(paths.q, s.q, q);
  writeTensor(paths.k, s.k, k);
  writeTensor(paths.v, s.k, v);
  const ref = linearAttention(c, q, k, v);
  const naive = linearAttention(c, q, k, v, Math.fround);
  let naiveErr = 0;
  for (let i = 0; i < ref.length; i++) naiveErr = Math.max(naiveErr, Math.abs(naive[i]! - ref[i]!));
  // The exactness rule's form (docs/math.md): within twice the naive float32 computation's error.
  return { q, k, v, paths, ref, bound: 2 * naiveErr + 1e-5 };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Exact softmax attention of row (b, h, i), float64, scale 1/√D, the case's causal mask: what
 * `--report-error` compares with, computed here from the definition.
 */
export function softmaxRow(
  c: LinearCase,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  b: number,
  h: number,
  i: number,
): Float64Array {
  const { H, Hk, Sq, Sk, D } = c;
  const kvh = Math.floor(h / (H / Hk));
  const qi = at(c, b, h, H, Sq, i);
  const last = lastKey(c, i);
  const s: number[] = [];
  for (let j = 0; j <= last; j++) {
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qi + d]! * k[at(c, b, kvh, Hk, Sk, j) + d]!;
    s.push(dot / Math.sqrt(D));
  }
  const m = Math.max(...s);
  const o = new Float64Array(D);
  let z = 0;
  for (let j = 0; j <= last; j++) {
    const p = Math.exp(s[j]! - m);
    z += p;
    for (let d = 0; d < D; d++) o[d]! += p * v[at(c, b, kvh, Hk, Sk, j) + d]!;
  }
  return o.map((x) => (z > 0 ? x / z : 0));
}

/** The odd shapes every linear test runs (D not a multiple of 8, GQA, Sq ≠ Sk both ways, bshd with a batch). */
export const LINEAR_CASES: LinearCase[] = [
  { name: 'plain-gqa', layout: 'bhsd', B: 1, H: 6, Hk: 2, Sq: 131, Sk: 203, D: 13, causal: false, blockQ: 32, blockK: 48 },
  { name: 'causal-longer-keys', layout: 'bhsd', B: 1, H: 2, Hk: 2, Sq: 90, Sk: 257, D: 19, causal: true, blockQ: 24, blockK: 40 },
  { name: 'causal-more-rows-bshd', layout: 'bshd', B: 2, H: 4, Hk: 1, Sq: 150, Sk: 70, D: 10, causal: true, blockQ: 16, blockK: 24 },
  { name: 'causal-default-blocks', layout: 'bhsd', B: 1, H: 3, Hk: 3, Sq: 300, Sk: 300, D: 24, causal: true },
];
