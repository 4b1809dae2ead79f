import {
  addInto,
  InputError,
  addKeys,
  applyState,
  copyState,
  emptyRows,
  emptyState,
  finishRows,
  keyState,
  phiRows,
  type AttentionSpec,
  type LinearState,
  type QBlockPlan,
  type TilePartial,
} from '@longattn/attention';
import type { BlockSource } from './block-source.ts';

/** K and V rows [count, D] of kv head (b, kvh) from key `start`, sync or not (a queue thread fetches blobs). */
export type KeyValueReader = (
  b: number,
  kvh: number,
  start: number,
  count: number,
) => { k: Float32Array; v: Float32Array } | Promise<{ k: Float32Array; v: Float32Array }>;

/** A reader over a BlockSource's keys and values (each valid until the next read of the same tensor). */
export function sourceReader(source: BlockSource): KeyValueReader {
  return (b, kvh, start, count) => ({ k: source.keys(b, kvh, start, count), v: source.values(b, kvh, start, count) });
}

/** Checkpoints kept per kv head: a prefix at every ⌈key blocks / 64⌉ key blocks, plus the latest. */
const CHECKPOINTS = 64;

/**
 * A thread's prefix sums of one job's per-key-block states (docs/math.md, "Linear attention"):
 * prefix(n) = state(block 0) + … + state(block n−1), always folded from zero in block order, so
 * its bits are the same whichever thread builds it and from which checkpoint. Each thread builds
 * the states it needs once (the queue's K/V blocks come through the worker's cache); memory per
 * kv head is ~65 states of (D² + D) float64.
 */
export class LinearStates {
  private readonly heads = new Map<string, { checkpoints: Map<number, LinearState>; latest: LinearState }>();
  private readonly every: number;

  constructor(
    private readonly spec: Pick<AttentionSpec, 'Sk' | 'D'>,
    private readonly blockK: number,
  ) {
    this.every = Math.max(1, Math.ceil(Math.ceil(spec.Sk / blockK) / CHECKPOINTS));
  }

  /** The state of keys [0, end) of kv head (b, kvh); `end` is a multiple of blockK or Sk. Do not modify it. */
  async prefix(b: number, kvh: number, end: number, read: KeyValueReader): Promise<LinearState> {
    const { D, Sk } = this.spec;
    const key = `${b}:${kvh}`;
    let head = this.heads.get(key);
    if (!head) {
      head = { checkpoints: new Map([[0, emptyState(D)]]), latest: emptyState(D) };
      this.heads.set(key, head);
    }
    const blocks = Math.ceil(end / this.blockK);
    const blocksIn = (s: LinearState) => Math.ceil(s.keys / this.blockK);
    if (blocksIn(head.latest) === blocks) return head.latest;
    let from = 0;
    for (let c = Math.floor(blocks / this.every) * this.every; c >= 0; c -= this.every) {
      if (head.checkpoints.has(c)) {
        from = c;
        break;
      }
    }
    const start = blocksIn(head.latest) <= blocks && blocksIn(head.latest) > from ? head.latest : head.checkpoints.get(from)!;
    const sum = copyState(start);
    for (let kb = blocksIn(start); kb < blocks; kb++) {
      const kStart = kb * this.blockK;
      const count = Math.min(this.blockK, Sk - kStart);
      const { k, v } = await read(b, kvh, kStart, count);
      addInto(sum, keyState(k, v, count, D, kStart));
      if ((kb + 1) % this.every === 0 && !head.checkpoints.has(kb + 1)) head.checkpoints.set(kb + 1, copyState(sum));
    }
    head.latest = sum;
    return sum;
  }
}

/** This thread's states of the current job (a thread serves one or two jobs at a time). */
const byJob = new Map<string, LinearStates>();

/** The states cache of job `key` in this thread (the two most recent jobs are kept). */
export function linearStates(key: string, spec: Pick<AttentionSpec, 'Sk' | 'D'>, blockK: number): LinearStates {
  let states = byJob.get(key);
  if (!states) {
    states = new LinearStates(spec, blockK);
    byJob.set(key, states);
    while (byJob.size > 2) byJob.delete(byJob.keys().next().value!);
  }
  return states;
}

/**
 * One q-block of linear attention (docs/math.md, "Linear attention"): its state tile reads the
 * prefix of per-key-block states, its exact tile (causal diagonal) adds each row's own keys, in
 * key order, then o = num / (den + 1e-6). Both engines produce a linear q-block only through this
 * function. Returns o [rows, D]; lse is NaN (linear attention has none; --lse is refused).
 */
export async function computeLinearQBlock(
  spec: AttentionSpec,
  block: QBlockPlan,
  source: BlockSource,
  states: LinearStates,
  read: KeyValueReader,
): Promise<TilePartial> {
  const { D } = spec;
  const diag = spec.Sk - spec.Sq;
  const acc = emptyRows(block.rows, D);
  if (block.tiles.length > 0) {
    const fq = phiRows(source.queries(block.b, block.h, block.qStart, block.rows), block.rows, D);
    for (const tile of block.tiles) {
      if (tile.full) {
        applyState(acc, fq, await states.prefix(tile.b, tile.kvh, tile.kStart + tile.keys, read));
      } else {
        const k = source.keys(tile.b, tile.kvh, tile.kStart, tile.keys);
        const v = source.values(tile.b, tile.kvh, tile.kStart, tile.keys);
        addKeys(acc, fq, k, v, tile.kStart, tile.keys, (r) => block.qStart + r + diag);
      }
    }
  }
  return { rows: block.rows, D, kStart: 0, o: finishRows(acc), lse: new Float32Array(block.rows).fill(Number.NaN) };
}

/**
 * Linear attention runs on its own float64 loops (linear-block.ts), not a kernel: `js` for
 * `auto`/`js`; any other named backend is refused rather than silently not used.
 */
export function linearBackend(spec: { linear?: boolean }, backend: string | undefined): 'js' | undefined {
  if (!spec.linear) return undefined;
  if (backend !== undefined && backend !== 'auto' && backend !== 'js')
    throw new InputError('--backend', `--linear runs on its own float64 JS loops: give auto or js, got "${backend}"`);
  return 'js';
}
