import {
  checkMergedRows,
  emptyPartial,
  hasPattern,
  intervalSpec,
  largestTileRows,
  markIntervalsVisible,
  markVisibleSpans,
  maskRule,
  merge,
  type AttentionSpec,
  type QBlockPlan,
  type Tile,
  type TilePartial,
  tileKeySpans,
} from '@longattn/attention';
import { tileLsePartial, type TileKernel } from '@longattn/kernels';
import { bandPartial } from './band-block.ts';
import type { BlockOutputs } from './block-outputs.ts';
import type { BlockSource } from './block-source.ts';
import { StrideTiles } from './stride-block.ts';
import { releasedTileOutputs } from './young-gc.ts';

/**
 * The one tile loop: each tile's blocks from `source`, through the kernel, in the given order.
 * A tile's queries are read once per run of tiles with the same q-block; a pattern tile may take a
 * row group of them (rowSpan: its partial holds those rows, partial.ts) and keys gathered
 * from several runs (keySpans) — docs/math.md, "Cost follows the pattern". `before` runs ahead of
 * each tile (fault tests throttle there). Returns the tiles' partials, in order:
 * o [rows, D] normalised over the tile's keys, lse [rows] (-Infinity where a row saw no key).
 * `outputs` (block-outputs.ts): `'lse'` runs each tile through the kernel's V-free tile
 * (tileLsePartial), no value read, the partials then [rows, 0]: o empty, lse [rows]; under `'o'`
 * a sole tile (Tile.sole) may come back with zeros for lse (TileJob's `oOnly`), its o the same bits either way.
 */
export async function computeTiles(
  kernel: TileKernel,
  spec: AttentionSpec,
  tiles: readonly Tile[],
  source: BlockSource,
  before?: (tile: Tile) => Promise<void> | void,
  outputs: BlockOutputs = 'o+lse',
): Promise<TilePartial[]> {
  const rule = maskRule(spec);
  const patterned = hasPattern(spec); // partial tiles then carry their mask (docs/math.md, "Patterns")
  const strided = !!spec.pattern?.stride; // intervals' tiles mask the stride out, stride tiles hold it (stride-tiles.ts)
  // Under a stride with a window alone, an intervals tile on contiguous keys is masked by the window's positional rule itself.
  const windowOnly = strided && !hasPattern(intervalSpec(spec));
  const strideTiles = strided ? new StrideTiles(spec, source) : undefined;
  const partials: TilePartial[] = [];
  let rowsOf: Tile | undefined;
  let q: Float32Array = new Float32Array(0);
  // A q-block's stride tiles run together after its other tiles, their partials in their places:
  // each key chunk is then read once per q-block (stride-block.ts).
  const deferred: number[] = [];
  const runDeferred = async () => {
    if (deferred.length === 0) return;
    const done = await strideTiles!.runAll(
      kernel,
      deferred.map((at) => tiles[at]!),
      q,
      outputs,
      before,
    );
    deferred.forEach((at, x) => {
      partials[at] = done[x]!;
    });
    deferred.length = 0;
  };
  for (const [at, tile] of tiles.entries()) {
    if (!rowsOf || rowsOf.b !== tile.b || rowsOf.h !== tile.h || rowsOf.qStart !== tile.qStart || rowsOf.rows !== tile.rows) {
      await runDeferred();
      q = source.queries(tile.b, tile.h, tile.qStart, tile.rows);
      rowsOf = tile;
    }
    if (tile.band) {
      // A window's band without its corners (band-block.ts): one call on kernels with a band path, else its parts.
      await before?.(tile);
      partials.push(
        // A band inside a stride's q-block merges with its stride tiles: only a sole one may skip its LSE.
        await bandPartial(kernel, spec, tile, q, source, outputs === 'o' && !tile.sole ? 'o+lse' : outputs, (parts) =>
          computeTiles(kernel, spec, parts, source, undefined, outputs),
        ),
      );
      continue;
    }
    if (tile.rowStep) {
      deferred.push(at);
      partials.push(undefined as unknown as TilePartial); // placed by runDeferred
      continue;
    }
    await before?.(tile);
    const [from, rows] = tile.rowSpan ?? [0, tile.rows];
    const spans = tileKeySpans(tile);
    const job = {
      rows,
      keys: tile.keys,
      D: spec.D,
      scale: spec.scale,
      qStart: tile.qStart + from,
      kStart: tile.kStart,
      rule,
      full: tile.full,
      ...(spec.allowNonfinite ? {} : { finite: true }),
      ...(tile.sole ? { sole: true, ...(outputs === 'o' ? { oOnly: true } : {}) } : {}),
      ...(patterned && !tile.full && !(windowOnly && !tile.keySpans)
        ? { visible: visibleOf(spec, tile.h, tile.qStart + from, rows, spans, tile.keys, strided) }
        : {}),
      q: q.subarray(from * spec.D, (from + rows) * spec.D),
      k: gathered('k', spans, tile.keys, spec.D, (start, count, into) => source.keys(tile.b, tile.kvh, start, count, into)),
    };
    const part: TilePartial =
      outputs === 'lse'
        ? await tileLsePartial(kernel, job)
        : await kernel.run({
            ...job,
            v: gathered('v', spans, tile.keys, spec.D, (start, count, into) => source.values(tile.b, tile.kvh, start, count, into)),
          });
    partials.push(tile.rowSpan ? { ...part, rows: tile.rows, rowSpan: [from, rows] } : part);
  }
  await runDeferred();
  return partials;
}

/** Per-thread buffers gathered keys and values are copied into, reused across tiles (fresh memory per tile costs page faults and GC). */
const gatherScratch = { k: new Float32Array(0), v: new Float32Array(0) };

/**
 * A tile's keys (or values) as one [keys, D] block: the source's own block for one run, else the
 * runs put together in key order into this thread's reused buffer, valid until the next tile's
 * (computeTiles awaits each kernel run before gathering the next). A source that reads into the
 * buffer (BlockSource's `into`: the files) is read straight into it — one copy per run, not a
 * read into its own buffer and a copy (docs/math.md, "Where a run's compute phase went"); any
 * other block is copied at once, as a reusing source's block lasts until its next read.
 */
function gathered(
  which: 'k' | 'v',
  spans: number[],
  keys: number,
  D: number,
  read: (start: number, count: number, into?: Float32Array) => Float32Array,
): Float32Array {
  if (spans.length === 2) return read(spans[0]!, spans[1]! - spans[0]!);
  if (gatherScratch[which].length < keys * D) gatherScratch[which] = new Float32Array(keys * D);
  const out = gatherScratch[which].subarray(0, keys * D);
  for (let x = 0, at = 0; x < spans.length; x += 2) {
    const count = spans[x + 1]! - spans[x]!;
    const into = out.subarray(at * D, (at + count) * D);
    const block = read(spans[x]!, count, into);
    if (block !== into) into.set(block);
    at += count;
  }
  return out;
}

/** Per-thread buffer a partial pattern tile's visibility is marked in, reused across tiles as gatherScratch is. */
let visibleScratch = new Uint8Array(0);

/**
 * [rows, keys] visibility of a tile's gathered keys (columns in gather order), valid until the
 * next tile's: the kernel reads it while computeTiles awaits its run.
 */
function visibleOf(
  spec: AttentionSpec,
  h: number,
  qStart: number,
  rows: number,
  spans: number[],
  keys: number,
  strided: boolean,
): Uint8Array {
  if (visibleScratch.length < rows * keys) visibleScratch = new Uint8Array(rows * keys);
  const out = visibleScratch.subarray(0, rows * keys);
  return strided ? markIntervalsVisible(spec, h, qStart, rows, spans, out) : markVisibleSpans(spec, h, qStart, rows, spans, out);
}

/**
 * Computes one q-block: every tile of it through the kernel (computeTiles), then the exact merge
 * of the tiles' partials in key order. Both engines produce a q-block's output only through this
 * function, so their bits agree for the same plan and backend.
 * Returns o [rows, D], lse [rows] (-Infinity for rows that see no key), written into `into`'s
 * arrays when given (a pool thread's packed reply: packedRuns). `outputs` (block-outputs.ts):
 * `'lse'` runs the V-free tiles (computeTiles), o [rows, 0] — the LSE bits are the ones the full
 * tiles' merge gives for the same tile LSEs; under `'o'` (the caller writes no LSE) the returned
 * lse is zeros in sole tiles' rows (computeTiles).
 */
export async function computeQBlock(
  kernel: TileKernel,
  spec: AttentionSpec,
  block: QBlockPlan,
  source: BlockSource,
  before?: (tile: Tile) => Promise<void> | void,
  into?: Pick<TilePartial, 'o' | 'lse'>,
  outputs: BlockOutputs = 'o+lse',
): Promise<TilePartial> {
  const width = outputs === 'lse' ? 0 : spec.D;
  if (block.tiles.length === 0) {
    const empty = emptyPartial(block.rows, width, 0);
    if (!into) return empty;
    into.o.fill(0, 0, block.rows * width);
    into.lse.fill(-Infinity, 0, block.rows);
    return { ...empty, o: into.o.subarray(0, block.rows * width), lse: into.lse.subarray(0, block.rows) };
  }
  const partials = await computeTiles(kernel, spec, block.tiles, source, before, outputs);
  const merged = merge(partials, into);
  releasedTileOutputs(partials.reduce((n, p) => n + p.o.byteLength + p.lse.byteLength, 0));
  checkMergedRows(spec, block, merged); // scores past float32 fail the job, never a NaN written
  return merged;
}

/**
 * Runs the kernel on tiles of the job's full tile size (mask-free and masked), merges their
 * partials, and repeats: the kernel builds what it caches per shape (ort sessions and their
 * memory, gpu.js programs), the merge gets compiled, and the buffers get touched — first touches
 * of fresh memory are slow on some VMs — all before the timed compute starts. A sole tile and a
 * one-row band tile too (on finite inputs), for the graphs a kernel keeps for those (ort: docs/math.md, "Sole tiles").
 */
export async function warmKernel(
  kernel: TileKernel,
  spec: AttentionSpec,
  blocks: { blockQ: number; blockK: number },
  rounds = 3,
  outputs: BlockOutputs = 'o+lse',
): Promise<void> {
  const rows = largestTileRows(spec, blocks.blockQ); // under a stride, q-blocks are long but tiles are not (stride-tiles.ts)
  const keys = Math.min(blocks.blockK, spec.Sk);
  const q = new Float32Array(rows * spec.D).fill(0.01);
  const kv = new Float32Array(keys * spec.D).fill(0.01);
  for (let round = 0; round < rounds; round++) {
    const partials = [];
    for (const full of [true, false]) {
      const rule = full ? { diag: 0, left: Infinity, right: Infinity } : { diag: 0, left: Infinity, right: 0 };
      const job = { rows, keys, D: spec.D, scale: spec.scale, qStart: 0, kStart: full ? 0 : keys, rule, full, q, k: kv };
      partials.push(outputs === 'lse' ? await tileLsePartial(kernel, job) : await kernel.run({ ...job, v: kv }));
    }
    merge(partials);
  }
  if (outputs === 'lse' || spec.allowNonfinite) return;
  const sole = { ...(outputs === 'o' ? { oOnly: true } : {}), finite: true };
  const rule = { diag: 0, left: Infinity, right: Infinity };
  await kernel.run({
    rows,
    keys,
    D: spec.D,
    scale: spec.scale,
    qStart: 0,
    kStart: 0,
    rule,
    full: true,
    q,
    k: kv,
    v: kv,
    sole: true,
    ...sole,
  });
  const one = kv.subarray(0, spec.D);
  await kernel.band?.({ B: 1, r: 1, keys: 1, shared: 0, width: 1, D: spec.D, scale: spec.scale, q: one, k: one, v: one, ...sole });
}
