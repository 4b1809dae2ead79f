import type { AttentionSpec, Tile } from '@longattn/attention';

/**
 * Where a queued job's bytes sit in its blob store (no BullMQ here: kernel threads use it too).
 * Every blob is float32 in bhsd order, each head's rows contiguous:
 *   in/q [B, H, Sq, D], in/k and in/v [B, Hk, Sk, D], out/o [B, H, Sq, D], out/lse [B, H, Sq];
 *   p/QI.KB: the partials of one tile job's run of tiles of a split q-block QI, the run's first
 *   tile at key block KB: each tile's [o (rows·D), lse (rows)] back to back, in tile order (one
 *   blob, not one per tile: a file or object costs more than its bytes, docs/scaling.md).
 * Inspect jobs (docs/flow.md, "Inspect on the queue") add c/N: chunk N's ChunkResult (chunk-codec.ts),
 * and their outputs out/report (JSON), out/received [B,H,Sk] and out/weights [B,H,B−A,Sk] float32,
 * out/map (PNG); their LSE (first pass or --lse) is out/lse.
 * Layer jobs (docs/flow.md, "Layers on the queue") add in/x [B·S, d_model] and in/xkv [B·Skv, d_kv]
 * (row-major float32), in/w/NAME (each weight or bias, float32, NAME as `q_proj.weight`) and out/y
 * [B·S, outDim]; their in/q, in/k, in/v are written by projection jobs, not uploaded.
 * All under `JOB/`, so one deletePrefix removes a job's bytes.
 */
export const blobNames = {
  input: (job: string, which: 'q' | 'k' | 'v') => `${job}/in/${which}`,
  /** A split q-block's run of tiles (its first tile at key block `kBlock`): packed partials. */
  partial: (job: string, qIndex: number, kBlock: number) => `${job}/p/${qIndex}.${kBlock}`,
  out: (job: string) => `${job}/out/o`,
  lse: (job: string) => `${job}/out/lse`,
  chunk: (job: string, index: number) => `${job}/c/${index}`,
  inspectOut: (job: string, what: InspectOutput) => `${job}/out/${what}`,
  layerInput: (job: string, which: 'x' | 'xkv') => `${job}/in/${which}`,
  weight: (job: string, name: string) => `${job}/in/w/${name}`,
  layerOut: (job: string) => `${job}/out/y`,
};

/** A tile of a split q-block `qi`, in its tile job's run of tiles that starts at tile `from` of the q-block. */
export interface SplitTile {
  qi: number;
  from: number;
  tile: Tile;
}

/**
 * Split tiles (in run order, as a tile job lists them) grouped by run: each group's partials are
 * one blob, `partial(job, qi, kBlock of the group's first tile)`.
 */
export function splitRuns<T extends Omit<SplitTile, 'tile'>>(tiles: readonly T[]): T[][] {
  const runs: T[][] = [];
  for (const t of tiles) {
    const last = runs.at(-1)?.[0];
    if (last && last.qi === t.qi && last.from === t.from) runs.at(-1)!.push(t);
    else runs.push([t]);
  }
  return runs;
}

/** The outputs of an inspect job, each one blob. */
export type InspectOutput = 'report' | 'received' | 'weights' | 'map';

/** A byte range of a blob: `length` bytes at `offset`. */
export interface BlobRange {
  name: string;
  offset: number;
  length: number;
}

/** Rows [start, start+count) of head `head` (batch b) of an input blob: [count, D] float32. */
export function inputRows(
  job: string,
  spec: AttentionSpec,
  which: 'q' | 'k' | 'v',
  b: number,
  head: number,
  start: number,
  count: number,
): BlobRange {
  const [heads, seq] = which === 'q' ? [spec.H, spec.Sq] : [spec.Hk, spec.Sk];
  const row = spec.D * 4;
  return { name: blobNames.input(job, which), offset: ((b * heads + head) * seq + start) * row, length: count * row };
}

/** Where a q-block's output goes: o [rows, D] and lse [rows] ranges of the output blobs. */
export function outputRows(
  job: string,
  spec: AttentionSpec,
  block: { b: number; h: number; qStart: number; rows: number },
): { o: BlobRange; lse: BlobRange } {
  const row = (block.b * spec.H + block.h) * spec.Sq + block.qStart;
  return {
    o: { name: blobNames.out(job), offset: row * spec.D * 4, length: block.rows * spec.D * 4 },
    lse: { name: blobNames.lse(job), offset: row * 4, length: block.rows * 4 },
  };
}
