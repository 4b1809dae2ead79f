import type { Layout } from './spec.ts';

/**
 * Where a head's rows live in a flat C-order tensor.
 * bhsd [B,H,S,D]: row s of head (b,h) at ((b·H + h)·S + s)·D, rows D apart.
 * bshd [B,S,H,D]: row s of head (b,h) at ((b·S + s)·H + h)·D, rows H·D apart.
 */
export interface HeadRows {
  /** Element offset of row 0. */
  first: number;
  /** Elements between consecutive rows. */
  stride: number;
}

export function headRows(layout: Layout, b: number, h: number, heads: number, seq: number, D: number): HeadRows {
  return layout === 'bhsd' ? { first: (b * heads + h) * seq * D, stride: D } : { first: (b * seq * heads + h) * D, stride: heads * D };
}

/** Shape of a tensor holding B×heads×seq×D in `layout`, with leading 1s dropped as `rank` says. */
export function layoutShape(layout: Layout, rank: number, B: number, heads: number, seq: number, D: number): number[] {
  const full = layout === 'bhsd' ? [B, heads, seq, D] : [B, seq, heads, D];
  return full.slice(4 - rank);
}

/** LSE shape [B,H,Sq] with leading dims dropped as Q's are ([H,Sq] for rank-3 Q, [Sq] for rank 2). */
export function lseShape(qRank: number, B: number, H: number, Sq: number): number[] {
  return [B, H, Sq].slice(4 - qRank);
}
