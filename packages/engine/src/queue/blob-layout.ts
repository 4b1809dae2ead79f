import type { AttentionSpec } from '@longattn/attention';

/**
 * Where a queued job's bytes sit in its blob store (no BullMQ here: kernel threads use it too).
 * Every blob is float32 in bhsd order, each head's rows contiguous:
 *   in/q [B, H, Sq, D], in/k and in/v [B, Hk, Sk, D], out/o [B, H, Sq, D], out/lse [B, H, Sq];
 *   p/QI.KB: the partial of tile (q-block QI, key block KB), [o (rows·D), lse (rows)].
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
  partial: (job: string, qIndex: number, kBlock: number) => `${job}/p/${qIndex}.${kBlock}`,
  out: (job: string) => `${job}/out/o`,
  lse: (job: string) => `${job}/out/lse`,
  chunk: (job: string, index: number) => `${job}/c/${index}`,
  inspectOut: (job: string, what: InspectOutput) => `${job}/out/${what}`,
  layerInput: (job: string, which: 'x' | 'xkv') => `${job}/in/${which}`,
  weight: (job: string, name: string) => `${job}/in/w/${name}`,
  layerOut: (job: string) => `${job}/out/y`,
};

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
