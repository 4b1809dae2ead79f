import { join } from 'node:path';
import { writeTensor } from '@longattn/tensor';
import { randomTensor } from './random.ts';
import { bruteWithBound, type BruteSpec } from './reference64.ts';

/**
 * Odd shapes checked against the brute-force reference (reference64.ts): Sq ≠ Sk both ways,
 * D = 59, windows with −1 on either side, causal + window, GQA H=6/Hk=2, MQA, bshd with batch.
 */
export interface BruteCase {
  name: string;
  spec: BruteSpec;
  blockQ: number;
  blockK: number;
}

const base = { layout: 'bhsd', B: 1, causal: false } as const;

export const BRUTE_CASES: BruteCase[] = [
  { name: 'dense 113×203 d59', spec: { ...base, H: 1, Hk: 1, Sq: 113, Sk: 203, D: 59 }, blockQ: 37, blockK: 50 },
  { name: 'causal Sq<Sk 113×203 d59', spec: { ...base, H: 2, Hk: 2, Sq: 113, Sk: 203, D: 59, causal: true }, blockQ: 40, blockK: 64 },
  {
    name: 'causal Sq>Sk 203×113 d59 (masked rows)',
    spec: { ...base, H: 1, Hk: 1, Sq: 203, Sk: 113, D: 59, causal: true },
    blockQ: 48,
    blockK: 40,
  },
  { name: 'window (-1,9) 150×180 d59', spec: { ...base, H: 1, Hk: 1, Sq: 150, Sk: 180, D: 59, window: [-1, 9] }, blockQ: 50, blockK: 70 },
  {
    name: 'window (7,-1) Sq>Sk 121×61 d59',
    spec: { ...base, H: 1, Hk: 1, Sq: 121, Sk: 61, D: 59, window: [7, -1] },
    blockQ: 30,
    blockK: 25,
  },
  {
    name: 'window (5,3) Sq>Sk 120×60 d17 (rows outside the band)',
    spec: { ...base, H: 1, Hk: 1, Sq: 120, Sk: 60, D: 17, window: [5, 3] },
    blockQ: 30,
    blockK: 25,
  },
  { name: 'window (0,0) 97×97 d59', spec: { ...base, H: 1, Hk: 1, Sq: 97, Sk: 97, D: 59, window: [0, 0] }, blockQ: 16, blockK: 32 },
  {
    name: 'causal + window (-1,4) Sq<Sk 77×130 d59 (right clamped to 0)',
    spec: { ...base, H: 1, Hk: 1, Sq: 77, Sk: 130, D: 59, causal: true, window: [-1, 4] },
    blockQ: 20,
    blockK: 33,
  },
  {
    name: 'causal + window (15,-1) Sq>Sk 140×90 d59',
    spec: { ...base, H: 1, Hk: 1, Sq: 140, Sk: 90, D: 59, causal: true, window: [15, -1] },
    blockQ: 32,
    blockK: 24,
  },
  { name: 'GQA H6/Hk2 causal 67×91 d59', spec: { ...base, H: 6, Hk: 2, Sq: 67, Sk: 91, D: 59, causal: true }, blockQ: 20, blockK: 30 },
  {
    name: 'MQA H5/Hk1 window (3,2) 61×45 d59',
    spec: { ...base, H: 5, Hk: 1, Sq: 61, Sk: 45, D: 59, window: [3, 2] },
    blockQ: 16,
    blockK: 16,
  },
  {
    name: 'bshd B2 GQA H6/Hk2 causal + window (9,-1) 71×53 d59',
    spec: { layout: 'bshd', B: 2, H: 6, Hk: 2, Sq: 71, Sk: 53, D: 59, causal: true, window: [9, -1] },
    blockQ: 24,
    blockK: 20,
  },
  {
    name: 'bshd B3 MQA H4/Hk1 dense scale 0.37 33×47 d59',
    spec: { layout: 'bshd', B: 3, H: 4, Hk: 1, Sq: 33, Sk: 47, D: 59, causal: false, scale: 0.37 },
    blockQ: 16,
    blockK: 16,
  },
  { name: 'one query, causal 1×200 d59', spec: { ...base, H: 1, Hk: 1, Sq: 1, Sk: 200, D: 59, causal: true }, blockQ: 1, blockK: 64 },
];

/** Shapes of q, k, v (rank 4, batch included) in the case's layout. */
export function bruteShapes(s: BruteSpec): { q: number[]; k: number[]; v: number[] } {
  const shape = (heads: number, S: number) => (s.layout === 'bshd' ? [s.B, S, heads, s.D] : [s.B, heads, S, s.D]);
  return { q: shape(s.H, s.Sq), k: shape(s.Hk, s.Sk), v: shape(s.Hk, s.Sk) };
}

/** Seeded inputs of a case, float32, flat in the case's layout. */
export function bruteInputs(s: BruteSpec, seed = 31): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const n = (heads: number, S: number) => s.B * heads * S * s.D;
  return { q: randomTensor(n(s.H, s.Sq), seed), k: randomTensor(n(s.Hk, s.Sk), seed + 1), v: randomTensor(n(s.Hk, s.Sk), seed + 2) };
}

/** The CLI flags that say what the spec says (mask, layout, scale). */
export function bruteFlags(s: BruteSpec): string[] {
  return [
    '--layout',
    s.layout,
    ...(s.causal ? ['--causal'] : []),
    ...(s.window ? ['--window', `${s.window[0]},${s.window[1]}`] : []),
    ...(s.scale !== undefined ? ['--scale', String(s.scale)] : []),
  ];
}

/**
 * Writes a case's q/k/v as .npy files under `dir` and returns their paths, the inputs and the
 * brute-force reference with its exactness bound.
 */
export function writeBruteCase(dir: string, s: BruteSpec, seed = 31) {
  const inputs = bruteInputs(s, seed);
  const shapes = bruteShapes(s);
  const files = { q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), v: join(dir, 'v.npy') };
  writeTensor(files.q, shapes.q, inputs.q);
  writeTensor(files.k, shapes.k, inputs.k);
  writeTensor(files.v, shapes.v, inputs.v);
  return { files, inputs, shapes, ...bruteWithBound(s, inputs.q, inputs.k, inputs.v) };
}
