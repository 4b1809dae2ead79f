/**
 * What a tile loop must give its caller (computeTiles, computeQBlock, warmKernel, bandPartial,
 * the local pool's and the queue's kernel-thread tasks):
 * - `'o+lse'`: o and lse of every row (the default; the queue engine's, whose `result --lse` may come later).
 * - `'lse'`: the LSE-only pass (inspect's first pass, docs/math.md "Attention patterns"): V-free
 *   tiles (tileLsePartial, bandLse), no value read; partials and results are [rows, 0] + lse.
 * - `'o'`: no LSE is written (a local `run` or `layer` without `--lse`): a sole tile (Tile.sole)
 *   may come back with zeros for its lse (the kernels' TileJob/BandJob `oOnly`, docs/math.md
 *   "Sole tiles"); o has the same bits as under `'o+lse'`.
 * Engine-internal, in-process only (function arguments, messages to this build's own threads):
 * never stored or sent between processes. There the queue's manifest says it (`inspect.lseFrom`:
 * lseOnly(manifest)) and the kernels take their own fields (TileJob.oOnly, BandJob.oOnly, tileLse).
 */
export type BlockOutputs = 'o+lse' | 'lse' | 'o';
