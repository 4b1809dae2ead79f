/**
 * Where one tile lives in a wasm kernel's linear memory (byte offsets, 64-byte aligned), matching
 * the shapes documented at the top of assembly/tile.ts. R8 = rows rounded up to 8,
 * K4 = keys rounded up to 4, D4 = D rounded up to 4.
 */
export interface TileLayout {
  q: number;
  qp: number;
  k: number;
  kp: number;
  v: number;
  lo: number;
  hi: number;
  sc: number;
  acc: number;
  st: number;
  o: number;
  lse: number;
  /** First byte past the layout. */
  end: number;
}

const ALIGN = 64;

export function tileLayout(base: number, rows: number, keys: number, D: number): TileLayout {
  const R8 = Math.ceil(rows / 8) * 8;
  const K4 = Math.ceil(keys / 4) * 4;
  const D4 = Math.ceil(D / 4) * 4;
  let at = Math.ceil(base / ALIGN) * ALIGN;
  const take = (bytes: number): number => {
    const start = at;
    at = Math.ceil((at + bytes) / ALIGN) * ALIGN;
    return start;
  };
  const q = take(rows * D * 4);
  const qp = take(R8 * D * 4);
  const k = take(keys * D * 4);
  const kp = take(K4 * D * 4);
  const v = take((K4 * D + 4) * 4);
  const lo = take(R8 * 4);
  const hi = take(R8 * 4);
  const sc = take(K4 * 8 * 4);
  const acc = take(D4 * 8 * 4);
  const st = take(64);
  const o = take(rows * D * 4);
  const lse = take(rows * 4);
  return { q, qp, k, kp, v, lo, hi, sc, acc, st, o, lse, end: at };
}
