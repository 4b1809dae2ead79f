import { markStrideVisible, type AttentionSpec, type Tile, type TilePartial } from '@longattn/attention';
import { tileLsePartial, type TileJob, type TileKernel } from '@longattn/kernels';
import type { BlockOutputs } from './block-outputs.ts';
import type { BlockSource } from './block-source.ts';

/**
 * Rows from, from + S, … (`count` of them) of `src` [*, D] copied side by side into `out`
 * [count, D]: a residue class's queries, keys or values as the contiguous block a kernel takes.
 */
function gatherRows(src: Float32Array, from: number, count: number, S: number, D: number, out: Float32Array): Float32Array {
  const block = out.subarray(0, count * D);
  for (let r = 0, to = 0; r < count; r++) {
    for (let x = (from + r * S) * D, end = x + D; x < end; x++) block[to++] = src[x]!;
  }
  return block;
}

/**
 * This thread's gathered tile inputs (one stride tile's queries, keys and values), reused across
 * tiles: a few hundred KB at most (rows ≤ ⌈blockQ / S⌉, keys ≤ the key chunk / S), so they stay
 * in cache and, unlike whole re-laid chunks (16 MiB each, fresh), cost no page faults
 * (docs/math.md, "Stride tiles on gathered rows").
 */
const scratch = { q: new Float32Array(0), k: new Float32Array(0), v: new Float32Array(0) };
let visibleScratch = new Uint8Array(0);

function scratchOf(which: 'q' | 'k' | 'v', n: number): Float32Array {
  if (scratch[which].length < n) scratch[which] = new Float32Array(n);
  return scratch[which];
}

/** The rule of a tile whose rows and keys are gathered: no positional mask (its visibility comes in `visible`). */
const UNMASKED = { diag: 0, left: Infinity, right: Infinity };

/**
 * Runs the stride tiles (stride-tiles.ts) of one tile loop. computeTiles hands over a q-block's
 * stride tiles together (`runAll`), after its other tiles: each key chunk (keyChunk) is then read
 * from the source once per q-block and stays valid while the run's tiles of that chunk gather
 * their rows from it — no other read of the source comes between. Each tile gathers its rows, keys and values (one in S) into this thread's small
 * buffers and is one kernel call with its visibility (stride keys below the row's limit and
 * outside its intervals). A source's blocks must not change while it is in use (every BlockSource's are the inputs').
 */
export class StrideTiles {
  constructor(
    private readonly spec: AttentionSpec,
    private readonly source: BlockSource,
  ) {}

  /**
   * The partials of `tiles` (stride tiles of one q-block, in key order), in their order: each
   * holds its rows only (rowSpan, rowStep), o [count, D], lse [count]. `q`: the q-block's
   * queries [tile.rows, D]. `outputs` `'lse'` (inspect's first pass, block-outputs.ts): V-free
   * tiles, no value read; o is then [count, 0]. Stride tiles are never sole, so `'o'` runs as
   * `'o+lse'`. `before` runs ahead of each tile, as computeTiles' does.
   */
  async runAll(
    kernel: TileKernel,
    tiles: readonly Tile[],
    q: Float32Array,
    outputs: BlockOutputs,
    before?: (tile: Tile) => Promise<void> | void,
  ): Promise<TilePartial[]> {
    const out: TilePartial[] = [];
    let read: { at: string; k: Float32Array; v: Float32Array | undefined } | undefined;
    for (const tile of tiles) {
      await before?.(tile);
      const at = chunkOf(tile);
      if (read?.at !== at) {
        // The chunk as tileKeySpans names it (a queue worker's source holds exactly those ranges), K
        // then V: a reusing source's block lasts until its next read of the same tensor.
        const [a, b] = tile.keyChunk!;
        const count = b - a;
        read = {
          at,
          k: this.source.keys(tile.b, tile.kvh, a, count),
          v: outputs === 'lse' ? undefined : this.source.values(tile.b, tile.kvh, a, count),
        };
      }
      out.push(await this.run(kernel, tile, q, read.k, read.v));
    }
    return out;
  }

  /** One stride tile: its rows of `q` (the q-block) and its keys of `k`, `v` (the chunk from keyChunk[0]) gathered, then the kernel. */
  private async run(kernel: TileKernel, tile: Tile, q: Float32Array, k: Float32Array, v: Float32Array | undefined): Promise<TilePartial> {
    const { D } = this.spec;
    const [from, rows] = tile.rowSpan!;
    const S = tile.rowStep!;
    const kStep = tile.keyStep!;
    const first = tile.kStart - tile.keyChunk![0];
    const job = {
      rows,
      keys: tile.keys,
      D,
      scale: this.spec.scale,
      ...this.mask(tile),
      ...(this.spec.allowNonfinite ? {} : { finite: true }),
      q: gatherRows(q, from, rows, S, D, scratchOf('q', rows * D)),
      k: gatherRows(k, first, tile.keys, kStep, D, scratchOf('k', tile.keys * D)),
    };
    const part = v
      ? await kernel.run({ ...job, v: gatherRows(v, first, tile.keys, kStep, D, scratchOf('v', tile.keys * D)) })
      : await tileLsePartial(kernel, job);
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
}

/** The key chunk a stride tile gathers from (b, kv head, keyChunk). */
function chunkOf(t: Tile): string {
  return `${t.b}:${t.kvh}:${t.keyChunk![0]}:${t.keyChunk![1]}`;
}
