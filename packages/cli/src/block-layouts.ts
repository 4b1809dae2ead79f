import { mulberry32 } from '@longattn/tensor';

/** Parameters of the common block-sparse layouts, in blocks (docs/math.md, "Patterns"). */
export interface LayoutParams {
  /** Query and key blocks: ⌈Sq/B⌉, ⌈Sk/B⌉. */
  nQb: number;
  nKb: number;
  /** Heads: > 1 gives each head its own random blocks (BigBird). */
  heads: number;
  /** Blocks each side of the diagonal (block (qb, kb) with |qb − kb| ≤ window). */
  window: number;
  /** The first `globals` blocks are global: their rows see every block, every row sees them. */
  globals: number;
  /** BigBird: random key blocks per row block, from `seed`. */
  random: number;
  seed: number;
  /** Strided: key blocks kb ≡ qb (mod stride), plus the window. */
  stride: number;
}

/**
 * Block masks [heads, nQb, nKb] (1 = visible) of BigBird (window + globals + `random` random
 * blocks per row, seeded), Longformer (window + globals) and the strided Sparse Transformer
 * layout (window + every stride-th block back from the diagonal). Diagonals align as causal
 * does when nQb ≠ nKb: block row qb sits at key block qb + nKb − nQb.
 */
export function blockLayout(kind: 'bigbird' | 'longformer' | 'strided', p: LayoutParams): Uint8Array {
  const cells = new Uint8Array(p.heads * p.nQb * p.nKb);
  const random = mulberry32(p.seed);
  for (let h = 0; h < p.heads; h++) {
    for (let qb = 0; qb < p.nQb; qb++) {
      const row = (h * p.nQb + qb) * p.nKb;
      const diag = qb + p.nKb - p.nQb;
      for (let kb = 0; kb < p.nKb; kb++) {
        const local = Math.abs(diag - kb) <= p.window;
        const global = kind !== 'strided' && (qb < p.globals || kb < p.globals);
        const strided = kind === 'strided' && p.stride > 0 && (((diag - kb) % p.stride) + p.stride) % p.stride === 0;
        if (local || global || strided) cells[row + kb] = 1;
      }
      if (kind === 'bigbird') {
        for (let n = 0; n < p.random; n++) cells[row + Math.floor(random() * p.nKb)] = 1;
      }
    }
  }
  return cells;
}
