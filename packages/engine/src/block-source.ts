import { headRows, type AttentionSpec } from '@longattn/attention';
import type { TensorReader } from '@longattn/tensor';

/**
 * Where a tile's rows come from. Every block is [count, D] contiguous float32. `into` ([count, D]):
 * a source may put the block there and return it (one copy for a gathered tile instead of a read
 * into its own buffer and a copy); a caller that passes it copies any other block it gets back.
 */
export interface BlockSource {
  queries(b: number, h: number, start: number, count: number): Float32Array;
  keys(b: number, kvh: number, start: number, count: number, into?: Float32Array): Float32Array;
  values(b: number, kvh: number, start: number, count: number, into?: Float32Array): Float32Array;
}

/** K and V together up to this size are kept whole in each thread after the first read (see readerSource). */
export const KV_CACHE_BYTES = 32 << 20;

/**
 * Reads blocks straight from the input files with positional reads: memory bounded by the blocks
 * (the file's pages stay in the OS page cache, outside the process). With `reuse`, each of q, k, v
 * reads into one buffer kept across calls — a block is then valid only until the next call for
 * the same tensor, which is how computeQBlock uses it (one tile in flight per source). With
 * `reuse`, when K and V together fit in KV_CACHE_BYTES, each kv head is read once whole and its
 * blocks are views of it: every q-block reads all its keys, so re-reading them per tile costs
 * ~10% of a fast kernel's time, while long documents (which would not fit) keep the bound.
 */
export function readerSource(spec: AttentionSpec, q: TensorReader, k: TensorReader, v: TensorReader, reuse = false): BlockSource {
  return { queries: blockReader(spec, q, spec.H, spec.Sq, reuse), ...keyValueSource(spec, k, v, reuse) };
}

/** One tensor's blocks by positional reads; with `reuse`, into one buffer kept across calls (see readerSource). */
function blockReader(spec: AttentionSpec, t: TensorReader, heads: number, seq: number, reuse: boolean) {
  let scratch = new Float32Array(0);
  return (b: number, h: number, start: number, count: number, into?: Float32Array) => {
    const rows = headRows(spec.layout, b, h, heads, seq, spec.D);
    const n = count * spec.D;
    if (reuse && !into && scratch.length < n) scratch = new Float32Array(n);
    return t.readRuns(rows.first + start * rows.stride, count, rows.stride, spec.D, into ?? (reuse ? scratch.subarray(0, n) : undefined));
  };
}

/** The keys and values half of readerSource (a layer projects its queries instead of reading them). */
export function keyValueSource(spec: AttentionSpec, k: TensorReader, v: TensorReader, reuse = false): Omit<BlockSource, 'queries'> {
  const cached = (t: TensorReader) => {
    const heads = new Map<string, Float32Array>();
    return (b: number, h: number, start: number, count: number) => {
      let whole = heads.get(`${b}:${h}`);
      if (!whole) {
        const rows = headRows(spec.layout, b, h, spec.Hk, spec.Sk, spec.D);
        whole = t.readRuns(rows.first, spec.Sk, rows.stride, spec.D);
        heads.set(`${b}:${h}`, whole);
      }
      return whole.subarray(start * spec.D, (start + count) * spec.D);
    };
  };
  const kvBytes = 2 * spec.B * spec.Hk * spec.Sk * spec.D * 4;
  const whole = reuse && kvBytes <= KV_CACHE_BYTES;
  const reader = (t: TensorReader) =>
    whole
      ? cached(t)
      : reuse
        ? windowReader(spec, t, blockReader(spec, t, spec.Hk, spec.Sk, true))
        : blockReader(spec, t, spec.Hk, spec.Sk, false);
  return { keys: reader(k), values: reader(v) };
}

/** The most keys (or values) a window keeps: 2 MiB of them, at least 4096 rows (see windowReader). */
export const WINDOW_BYTES = 2 << 20;

/** Requests shorter than this outside the window are read on their own and leave it as it is (sinks, globals, random blocks). */
const WINDOW_MIN_ROWS = 256;

/**
 * Keys or values of one kv head through a sliding window of rows kept in this thread: consecutive
 * q-blocks of a window, band or sparse pattern read mostly the same keys (a StreamingLLM q-block
 * of 256 rows reads ~4350 keys, 4094 of them its predecessor's), so a run reads each key about
 * once per thread instead of once per q-block that sees it (docs/math.md, "Where a run's compute
 * phase went"). A request inside the window is a view of it; one that starts inside and runs past
 * its end extends it (dropping the oldest rows beyond `capacity`); a contiguous tile's request
 * (no `into`) of ≥ WINDOW_MIN_ROWS elsewhere starts a new window there; anything else is read
 * directly: short runs elsewhere, requests over WINDOW_BYTES, and a gathered tile's runs outside
 * the window (read straight into the tile's block, one copy, as before: BigBird's random blocks
 * would otherwise move the window away from its band at every row group). Every block is valid until the next request for
 * this tensor, as readerSource promises.
 * The window keeps 3× the largest request it served (≥ 1024 rows, ≤ WINDOW_BYTES): enough for a
 * q-block's runs and its successor's, no more, since the rows kept are what it copies and touches.
 * Its rows live at [at, at + hi − lo) of one buffer with room for capacity + capacity / 4 rows and
 * move back to the start only when their end reaches the buffer's end.
 */
function windowReader(spec: AttentionSpec, t: TensorReader, direct: ReturnType<typeof blockReader>) {
  const D = spec.D;
  const limit = Math.max(4096, Math.floor(WINDOW_BYTES / (4 * D)));
  let capacity = 0;
  let buffer = new Float32Array(0);
  let head = -1;
  let lo = 0; // the window holds rows [lo, hi) of kv head `head` ...
  let hi = 0;
  let at = 0; // ... at buffer rows [at, at + hi − lo)
  const room = () => buffer.length / D;
  const rowsAt = (start: number, end: number) => buffer.subarray((at + start - lo) * D, (at + end - lo) * D);
  const readInto = (start: number, end: number, b: number, h: number) => {
    const rows = headRows(spec.layout, b, h, spec.Hk, spec.Sk, D);
    t.readRuns(rows.first + start * rows.stride, end - start, rows.stride, D, rowsAt(start, end));
  };
  return (b: number, h: number, start: number, count: number, into?: Float32Array): Float32Array => {
    const key = b * spec.Hk + h;
    const end = start + count;
    if (key === head && start >= lo && end <= hi) return rowsAt(start, end);
    if (count > limit) return direct(b, h, start, count, into);
    const extending = key === head && start >= lo && start <= hi;
    if (!extending && (into || count < WINDOW_MIN_ROWS)) return direct(b, h, start, count, into);
    const wanted = Math.min(limit, Math.max(1024, 3 * count));
    if (wanted > capacity) {
      // Grow (rarely: the largest request comes early), keeping the window's rows.
      const grown = new Float32Array((wanted + Math.floor(wanted / 4)) * D);
      grown.set(buffer.subarray(at * D, (at + hi - lo) * D));
      buffer = grown;
      at = 0;
      capacity = wanted;
    }
    if (extending) {
      const keep = Math.max(lo, end - capacity); // ≤ start, as count ≤ capacity
      at += keep - lo;
      lo = keep;
      if (at + (end - lo) > room()) {
        buffer.copyWithin(0, at * D, (at + hi - lo) * D);
        at = 0;
      }
      readInto(hi, end, b, h);
      hi = end;
    } else {
      head = key;
      lo = start;
      hi = end;
      at = 0;
      readInto(start, end, b, h);
    }
    return rowsAt(start, end);
  };
}

/**
 * Blocks out of whole tensors already in memory (e.g. SharedArrayBuffers shared by a thread
 * pool): a zero-copy view when a head's rows are contiguous (bhsd), a gathered copy otherwise.
 */
export function arraySource(spec: AttentionSpec, q: Float32Array, k: Float32Array, v: Float32Array): BlockSource {
  const view = (t: Float32Array, heads: number, seq: number) => (b: number, h: number, start: number, count: number) => {
    const { D } = spec;
    const rows = headRows(spec.layout, b, h, heads, seq, D);
    const first = rows.first + start * rows.stride;
    if (rows.stride === D) return t.subarray(first, first + count * D);
    const block = new Float32Array(count * D);
    for (let r = 0; r < count; r++) block.set(t.subarray(first + r * rows.stride, first + r * rows.stride + D), r * D);
    return block;
  };
  return { queries: view(q, spec.H, spec.Sq), keys: view(k, spec.Hk, spec.Sk), values: view(v, spec.Hk, spec.Sk) };
}
