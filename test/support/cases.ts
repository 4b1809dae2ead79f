import type { SpecOptions } from '@longattn/attention';

/**
 * Flash-attention-style odd shapes every backend and engine must get exactly right.
 * Shapes are bhsd with batch 1 unless `layout`/`B` say otherwise.
 */
export interface Case {
  name: string;
  B?: number;
  H: number;
  Hk: number;
  Sq: number;
  Sk: number;
  D: number;
  options: SpecOptions;
  blockQ?: number;
  blockK?: number;
}

export const CASES: Case[] = [
  { name: '113×203 d59 dense', H: 1, Hk: 1, Sq: 113, Sk: 203, D: 59, options: {}, blockQ: 37, blockK: 50 },
  { name: '113×203 d111 causal (Sq<Sk)', H: 1, Hk: 1, Sq: 113, Sk: 203, D: 111, options: { causal: true }, blockQ: 64, blockK: 64 },
  {
    name: '203×113 d64 causal (Sq>Sk, fully masked rows)',
    H: 1,
    Hk: 1,
    Sq: 203,
    Sk: 113,
    D: 64,
    options: { causal: true },
    blockQ: 48,
    blockK: 40,
  },
  { name: '1023×1024 d64 dense', H: 1, Hk: 1, Sq: 1023, Sk: 1024, D: 64, options: {} },
  { name: '1024×1023 d64 causal', H: 1, Hk: 1, Sq: 1024, Sk: 1023, D: 64, options: { causal: true }, blockQ: 256, blockK: 256 },
  {
    name: 'window (0,0) 97×97 d32',
    H: 1,
    Hk: 1,
    Sq: 97,
    Sk: 97,
    D: 32,
    options: { window: { left: 0, right: 0 } },
    blockQ: 16,
    blockK: 32,
  },
  {
    name: 'Mistral window causal+(15,0) 257×257 d40',
    H: 2,
    Hk: 2,
    Sq: 257,
    Sk: 257,
    D: 40,
    options: { causal: true, window: { left: 15, right: 0 } },
    blockQ: 32,
    blockK: 64,
  },
  {
    name: 'window (-1,9) 150×180 d24',
    H: 1,
    Hk: 1,
    Sq: 150,
    Sk: 180,
    D: 24,
    options: { window: { left: -1, right: 9 } },
    blockQ: 50,
    blockK: 70,
  },
  {
    name: 'window (5,3) Sq>Sk 120×60 d16 (rows outside the band)',
    H: 1,
    Hk: 1,
    Sq: 120,
    Sk: 60,
    D: 16,
    options: { window: { left: 5, right: 3 } },
    blockQ: 30,
    blockK: 25,
  },
  { name: 'GQA H4/Hk2 causal 64×80 d16', H: 4, Hk: 2, Sq: 64, Sk: 80, D: 16, options: { causal: true }, blockQ: 20, blockK: 30 },
  { name: 'MQA H3/Hk1 75×75 d8', H: 3, Hk: 1, Sq: 75, Sk: 75, D: 8, options: {}, blockQ: 32, blockK: 32 },
  {
    name: 'bshd B2 H2 causal 70×90 d12',
    B: 2,
    H: 2,
    Hk: 2,
    Sq: 70,
    Sk: 90,
    D: 12,
    options: { layout: 'bshd', causal: true },
    blockQ: 24,
    blockK: 40,
  },
  { name: 'scale 0.5, single key', H: 1, Hk: 1, Sq: 5, Sk: 1, D: 7, options: { scale: 0.5 } },
];

/** Shapes of q, k, v for a case in its layout. */
export function caseShapes(c: Case): { q: number[]; k: number[]; v: number[] } {
  const B = c.B ?? 1;
  const bshd = c.options.layout === 'bshd';
  const shape = (heads: number, S: number) => (bshd ? [B, S, heads, c.D] : [B, heads, S, c.D]);
  return { q: shape(c.H, c.Sq), k: shape(c.Hk, c.Sk), v: shape(c.Hk, c.Sk) };
}
