import { merge, type AttentionSpec, type Tile, type TilePartial } from '@longattn/attention';
import type { BandJob, TileKernel } from '@longattn/kernels';
import type { BlockOutputs } from './block-outputs.ts';
import type { BlockSource } from './block-source.ts';

/** Per-thread buffers a band tile's keys and values are gathered into ([B, K, D]), reused across tiles. */
const scratch = { k: new Float32Array(0), v: new Float32Array(0) };

/** The o of an LSE-only partial: [rows, 0]. */
const NO_VALUES = new Float32Array(0);

/**
 * A band tile's partial (docs/math.md, "Band tiles"; the tile from @longattn/attention's
 * band-tiles.ts): on a kernel with a band path, its rows' sub-blocks in one call, each against the
 * shared keys and its own window gathered into [B, K, D] (overlapping windows copied); otherwise
 * (or when that kernel declines) the tile's parts through `runParts` (computeTiles), merged into
 * one partial (a single part's partial as it is, so such a kernel's bits are those without bands).
 * `q`: the q-block's queries [tile.rows, D]. Returns the tile's rows (rowSpan as the tile's).
 * `outputs` (block-outputs.ts): `'lse'` runs the V-free band (bandLse) or parts, o [rows, 0];
 * `'o'`: no LSE is wanted (a sole band tile: BandJob's `oOnly`, the kernel may return zeros for it).
 */
export async function bandPartial(
  kernel: TileKernel,
  spec: AttentionSpec,
  tile: Tile,
  q: Float32Array,
  source: BlockSource,
  outputs: BlockOutputs,
  runParts: (parts: Tile[]) => Promise<TilePartial[]>,
): Promise<TilePartial> {
  const band = tile.band!;
  const [from, rows] = tile.rowSpan ?? [0, tile.rows];
  const D = spec.D;
  const spanned = (p: Omit<TilePartial, 'rows' | 'kStart'>) => spannedAs(tile, p);
  if (outputs === 'lse' ? kernel.bandLse : kernel.band) {
    const r = band.sub;
    const B = rows / r;
    const width = band.left + band.right + 1;
    let shared = 0;
    for (let x = 0; x < band.shared.length; x += 2) shared += band.shared[x + 1]! - band.shared[x]!;
    const keys = shared + r - 1 + width;
    const lo = tile.qStart + from + spec.Sk - spec.Sq - band.left; // the first sub-block's first window key
    const gather = (which: 'k' | 'v', read: (start: number, count: number) => Float32Array) =>
      gatherBand(which, B, r, keys, D, band.shared, lo, width, read);
    const job: Omit<BandJob, 'v'> = {
      B,
      r,
      keys,
      shared,
      width,
      D,
      scale: spec.scale,
      q: q.subarray(from * D, (from + rows) * D),
      k: gather('k', (start, count) => source.keys(tile.b, tile.kvh, start, count)),
      ...(spec.allowNonfinite ? {} : { finite: true }),
    };
    if (outputs === 'lse') {
      const lse = await kernel.bandLse!(job);
      if (lse) return spanned({ D: 0, o: NO_VALUES, lse });
    } else {
      const v = gather('v', (start, count) => source.values(tile.b, tile.kvh, start, count));
      const part = await kernel.band!({ ...job, v, ...(outputs === 'o' ? { oOnly: true } : {}) });
      if (part) return spanned({ D, o: part.o, lse: part.lse });
    }
  }
  return partsPartial(tile, runParts, outputs, D);
}

/**
 * The band tile's parts in its place (run by `runParts`, V-free when `outputs` is `'lse'`: then o is [rows, 0]),
 * merged into one partial (a single part's partial as it is).
 */
async function partsPartial(
  tile: Tile,
  runParts: (parts: Tile[]) => Promise<TilePartial[]>,
  outputs: BlockOutputs,
  D: number,
): Promise<TilePartial> {
  const [from, rows] = tile.rowSpan ?? [0, tile.rows];
  const band = tile.band!;
  // The parts were planned for the band's rows as a q-block of their own, for the head the plan kept them for: here
  // they take the tile's place (its head, a stride's long q-block).
  const parts = band.parts.map((p) => ({
    ...p,
    b: tile.b,
    h: tile.h,
    kvh: tile.kvh,
    qBlock: tile.qBlock,
    qStart: tile.qStart,
    rows: tile.rows,
    ...(tile.rowSpan ? { rowSpan: [from, rows] as [number, number] } : {}),
  }));
  const partials = await runParts(parts);
  if (partials.length === 1) return partials[0]!;
  const merged = merge(partials);
  const width = outputs === 'lse' ? 0 : D;
  const o = merged.o.subarray(from * width, (from + rows) * width);
  const lse = merged.lse.subarray(from, from + rows);
  return spannedAs(tile, { D: width, o, lse });
}

/** A partial of the tile's rows (its rowSpan's when it has one), keyed at the tile's first key. */
function spannedAs(tile: Tile, p: Omit<TilePartial, 'rows' | 'kStart'>): TilePartial {
  const [from, rows] = tile.rowSpan ?? [0, tile.rows];
  return tile.rowSpan ? { ...p, rows: tile.rows, kStart: tile.kStart, rowSpan: [from, rows] } : { ...p, rows, kStart: tile.kStart };
}

/**
 * [B, K, D] of one band tile: sub-block s gets the shared runs (columns [0, shared)) then its
 * window, keys lo + s·r … lo + s·r + r − 2 + width. The band's keys are read once and copied per
 * sub-block before the shared runs are read (a reusing source's block lasts until its next read).
 */
function gatherBand(
  which: 'k' | 'v',
  B: number,
  r: number,
  keys: number,
  D: number,
  sharedRuns: number[],
  lo: number,
  width: number,
  read: (start: number, count: number) => Float32Array,
): Float32Array {
  if (scratch[which].length < B * keys * D) scratch[which] = new Float32Array(B * keys * D);
  const out = scratch[which].subarray(0, B * keys * D);
  const windowKeys = r - 1 + width;
  const shared = keys - windowKeys;
  const all = read(lo, B * r - 1 + width);
  for (let s = 0; s < B; s++) out.set(all.subarray(s * r * D, (s * r + windowKeys) * D), (s * keys + shared) * D);
  for (let x = 0, at = 0; x < sharedRuns.length; x += 2) {
    const count = sharedRuns[x + 1]! - sharedRuns[x]!;
    const run = read(sharedRuns[x]!, count);
    for (let s = 0; s < B; s++) out.set(run, (s * keys + at) * D);
    at += count;
  }
  return out;
}
