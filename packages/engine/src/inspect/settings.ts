/**
 * What an inspect pass gathers (docs/contracts.md, "Attention patterns"). Fixed for a job and sent
 * to every thread (or tile job) unchanged, so every chunk computes the same things.
 */
export interface InspectSettings {
  /** `--sinks-stat N`: sinkShare sums p over keys j < N. Default 4. */
  sinks: number;
  /** `--local-stat W`: localShare sums p over keys with |pos(i) − j| ≤ W. Default 128. */
  local: number;
  /** `--rows A:B`: the query rows whose top-k keys (and weight rows) are reported; [0, 0) = none. */
  rowsFrom: number;
  rowsTo: number;
  /** `--top-k`: keys listed per row in A:B. Default 8. */
  topK: number;
  /** Whether to keep the exact weight rows of A:B (`--weights-out`). */
  weights: boolean;
  /** Whether to sum Σ_i p_ij per key (`--received`). */
  received: boolean;
  /** Map grid: `mapRows` × `mapCols` cells over (query, key); 0 = no map. min(--map-size, Sq) × min(--map-size, Sk). */
  mapRows: number;
  mapCols: number;
}

/**
 * Rows per chunk: the unit of the second pass (one pool task, or one queue tile job). A fixed
 * number, never derived from thread count or block sizes, so every sum is formed in the same
 * order whatever runs it: chunk results are folded in chunk order, rows in row order.
 */
export const CHUNK_ROWS = 1024;

/** Keys per block read from K while a chunk runs (its rows meet each block in turn). */
export const CHUNK_KEYS = 2048;

/**
 * Rows per score tile: a chunk's rows meet a key block TILE_ROWS at a time, each tile one GEMM of
 * at most TILE_ROWS × CHUNK_KEYS scores (2 MiB each of logp and p; measured here, 256 rows cost no more per score than 512),
 * trimmed to the keys its rows see. Fixed, like CHUNK_ROWS: the tiles, hence the bits, never
 * depend on who runs the chunk.
 */
export const TILE_ROWS = 256;

/** The map cell (row or column) of position x among n positions on a grid of `cells`. */
export function cellOf(x: number, n: number, cells: number): number {
  return Math.floor((x * cells) / n);
}
