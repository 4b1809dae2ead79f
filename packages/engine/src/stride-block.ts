import { markStrideVisible, type AttentionSpec, type Tile, type TilePartial } from '@longattn/attention';
import { tileLsePartial, type TileJob, type TileKernel } from '@longattn/kernels';
import type { BlockSource } from './block-source.ts';

/**
 * Blocks of one residue class as contiguous runs (docs/math.md, "Cost follows the pattern"): a
 * block of `len` rows (a q-block's queries, or a stride key chunk's keys and values, both
 * starting at a multiple of S relative to the class origin) re-laid class by class — rows c,
 * c+S, c+2S, … of the block side by side — so a stride tile's rows and keys are plain subarrays
 * and the kernel gets ordinary contiguous blocks. Class c holds ⌈(len − c) / S⌉ rows from row
 * c·⌊len / S⌋ + min(c, len mod S).
 */
export function classOffset(len: number, S: number, c: number): number {
  return c * Math.floor(len / S) + Math.min(c, len % S);
}

/** `src` [len, D] re-laid class by class into `out` [len, D] (classOffset), row by row. */
function byClass(src: Float32Array, len: number, S: number, D: number, out: Float32Array): void {
  let to = 0;
  for (let c = 0; c < Math.min(S, len); c++) {
    for (let r = c; r < len; r += S, to += D) out.set(src.subarray(r * D, (r + 1) * D), to);
  }
}

/**
 * Key chunks kept re-laid per thread (each 2 · STRIDE_CHUNK_BYTES at most): a q-block's stride
 * tiles read chunks 0 … t in key order and the thread's next q-block reads them again, so kept
 * chunks are re-laid about once per thread and job instead of once per q-block.
 */
const CHUNKS_KEPT = 2;

/** This thread's re-laid queries (one q-block) and key chunks (the last CHUNKS_KEPT used), by the id of the source they came from. */
const rowsKept = { source: 0, at: '', data: new Float32Array(0) };
const chunksKept: { source: number; at: string; k: Float32Array; v: Float32Array; hasV: boolean }[] = [];

/** Sources by id, held weakly: a kept chunk never keeps a finished job's source (and its blocks) alive. */
const sourceIds = new WeakMap<BlockSource, number>();
let lastSourceId = 0;
let visibleScratch = new Uint8Array(0);

/** The rule of a tile whose rows and keys are gathered: no positional mask (its visibility comes in `visible`). */
const UNMASKED = { diag: 0, left: Infinity, right: Infinity };

/**
 * Runs the stride tiles (stride-tiles.ts) of one tile loop: the q-block's queries and each key
 * chunk's K and V are re-laid by class once (kept per thread, above), each tile then one kernel
 * call on subarrays, with its visibility (stride keys below the row's limit and outside its
 * intervals). A source's blocks must not change while it is in use (every BlockSource's are the inputs').
 */
export class StrideTiles {
  private readonly id: number;

  constructor(
    private readonly spec: AttentionSpec,
    private readonly source: BlockSource,
  ) {
    if (!sourceIds.has(source)) sourceIds.set(source, ++lastSourceId);
    this.id = sourceIds.get(source)!;
  }

  /**
   * The tile's partial: its rows only (rowSpan, rowStep), o [count, D], lse [count]. `q`: the
   * q-block's queries [tile.rows, D]. `lseOnly` (inspect's first pass): the V-free tile, no value
   * read; o is then [count, 0].
   */
  async run(kernel: TileKernel, tile: Tile, q: Float32Array, lseOnly = false): Promise<TilePartial> {
    const { D } = this.spec;
    const [from, rows] = tile.rowSpan!;
    const S = tile.rowStep!;
    const [a, b] = tile.keyChunk!;
    const rowsAt = `${tile.b}:${tile.h}:${tile.qStart}:${tile.rows}:${S}`;
    if (rowsKept.source !== this.id || rowsKept.at !== rowsAt) {
      if (rowsKept.data.length < tile.rows * D) rowsKept.data = new Float32Array(tile.rows * D);
      byClass(q, tile.rows, S, D, rowsKept.data);
      rowsKept.source = this.id;
      rowsKept.at = rowsAt;
    }
    const chunk = this.chunk(tile.b, tile.kvh, a, b, S, !lseOnly);
    const rowAt = classOffset(tile.rows, S, from) * D;
    const keyAt = classOffset(b - a, S, tile.kStart - a) * D;
    const job = {
      rows,
      keys: tile.keys,
      D,
      scale: this.spec.scale,
      ...this.mask(tile),
      ...(this.spec.allowNonfinite ? {} : { finite: true }),
      q: rowsKept.data.subarray(rowAt, rowAt + rows * D),
      k: chunk.k.subarray(keyAt, keyAt + tile.keys * D),
    };
    const part = lseOnly
      ? await tileLsePartial(kernel, job)
      : await kernel.run({ ...job, v: chunk.v.subarray(keyAt, keyAt + tile.keys * D) });
    return { ...part, kStart: tile.kStart, rows: tile.rows, rowSpan: [from, rows], rowStep: S };
  }

  /**
   * The tile's mask. Under causal with no pattern but the stride (and a window), row r of the
   * class sees its gathered key x iff x ≤ r + d: the stride key j = kStart + x·S is at most
   * pos(i) = p0 + r·S (causal) and, with a window (L, ·), below pos(i) − L (keys from there on
   * are the window's tiles'). That is the kernels' positional rule on gathered positions
   * (qStart = 0, kStart = 0, diag = d, right = 0), whose masks the kernels build once per shape;
   * any other tile carries its visibility, marked from the rule.
   */
  private mask(tile: Tile): Pick<TileJob, 'qStart' | 'kStart' | 'rule' | 'full' | 'visible'> {
    const [from, rows] = tile.rowSpan!;
    if (tile.full) return { qStart: tile.qStart + from, kStart: tile.kStart, rule: UNMASKED, full: true };
    const { spec } = this;
    const p = spec.pattern ?? {};
    if (spec.causal && p.sinks === undefined && p.global === undefined && p.blockMask === undefined) {
      const S = tile.keyStep!;
      const p0 = tile.qStart + from + spec.Sk - spec.Sq;
      let diag = (p0 - tile.kStart) / S; // p0 ≡ kStart (mod S): an integer
      if (spec.window.left !== Infinity) diag = Math.min(diag, Math.ceil((p0 - spec.window.left - tile.kStart) / S) - 1);
      return { qStart: 0, kStart: 0, rule: { diag, left: Infinity, right: 0 }, full: false };
    }
    if (visibleScratch.length < rows * tile.keys) visibleScratch = new Uint8Array(rows * tile.keys);
    return {
      qStart: tile.qStart + from,
      kStart: tile.kStart,
      rule: UNMASKED,
      full: false,
      visible: markStrideVisible(spec, tile, visibleScratch),
    };
  }

  /**
   * Keys (and, when `withValues`, values) [a, b) of kv head (b, kvh), re-laid by class: kept, or
   * read and re-laid into the least recently used buffers.
   */
  private chunk(bi: number, kvh: number, a: number, b: number, S: number, withValues: boolean): { k: Float32Array; v: Float32Array } {
    const { D } = this.spec;
    const at = `${bi}:${kvh}:${a}:${b}:${S}`;
    let chunk = chunksKept.find((c) => c.source === this.id && c.at === at);
    if (chunk) chunksKept.splice(chunksKept.indexOf(chunk), 1);
    else {
      const old = chunksKept.length >= CHUNKS_KEPT ? chunksKept.pop() : undefined;
      const n = (b - a) * D;
      const k = old && old.k.length >= n ? old.k : new Float32Array(n);
      const v = old?.v ?? new Float32Array(0);
      // Re-laid at once: a reusing source's block lasts until its next read.
      byClass(this.source.keys(bi, kvh, a, b - a), b - a, S, D, k);
      chunk = { source: this.id, at, k, v, hasV: false };
    }
    if (withValues && !chunk.hasV) {
      const n = (b - a) * D;
      if (chunk.v.length < n) chunk.v = new Float32Array(n);
      byClass(this.source.values(bi, kvh, a, b - a), b - a, S, D, chunk.v);
      chunk.hasV = true;
    }
    chunksKept.unshift(chunk);
    return chunk;
  }
}
