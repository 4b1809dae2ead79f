import type { ChunkResult, TopRow } from './chunk.ts';

/**
 * A ChunkResult as bytes (the queue engine's chunk blobs): a 4-byte little-endian header length,
 * the JSON header { rows, cellRowStart, received, cells, weights (element counts, 0 = absent), top },
 * zero padding to a multiple of 8, then entropy, distance, sink, local [rows] float64, received [Sk]
 * and cells float64, weights float32. Every float64 travels as its bits, and the top lists' numbers
 * as JSON (which gives a double back exactly), so a decoded result folds to the same bits.
 */
export function encodeChunkResult(r: ChunkResult): Uint8Array {
  const header = JSON.stringify({
    rows: r.entropy.length,
    cellRowStart: r.cellRowStart,
    received: r.received?.length ?? 0,
    cells: r.cells?.length ?? 0,
    weights: r.weights?.length ?? 0,
    top: r.top,
  });
  const text = Buffer.from(header, 'utf8');
  const start = Math.ceil((4 + text.length) / 8) * 8;
  const rows = r.entropy.length;
  const f64 = 4 * rows + (r.received?.length ?? 0) + (r.cells?.length ?? 0);
  const bytes = new Uint8Array(start + f64 * 8 + (r.weights?.length ?? 0) * 4);
  new DataView(bytes.buffer).setUint32(0, text.length, true);
  bytes.set(text, 4);
  const doubles = new Float64Array(bytes.buffer, start, f64);
  let at = 0;
  for (const part of [r.entropy, r.distance, r.sink, r.local, r.received, r.cells]) {
    if (!part) continue;
    doubles.set(part, at);
    at += part.length;
  }
  if (r.weights) new Float32Array(bytes.buffer, start + f64 * 8, r.weights.length).set(r.weights);
  return bytes;
}

/** The ChunkResult of encodeChunkResult's bytes; RangeError for bytes it did not write. */
export function decodeChunkResult(bytes: Uint8Array): ChunkResult {
  const copy = Uint8Array.from(bytes); // aligned, and independent of the store's buffer
  const view = new DataView(copy.buffer);
  if (copy.length < 4) throw new RangeError('chunk result: too short');
  const length = view.getUint32(0, true);
  if (4 + length > copy.length) throw new RangeError('chunk result: header past the end');
  const h = JSON.parse(Buffer.from(copy.subarray(4, 4 + length)).toString('utf8')) as {
    rows: number;
    cellRowStart: number;
    received: number;
    cells: number;
    weights: number;
    top: TopRow[];
  };
  const start = Math.ceil((4 + length) / 8) * 8;
  const f64 = 4 * h.rows + h.received + h.cells;
  if (copy.length !== start + f64 * 8 + h.weights * 4) throw new RangeError('chunk result: size does not match its header');
  const doubles = new Float64Array(copy.buffer, start, f64);
  let at = 0;
  const take = (n: number) => {
    at += n;
    return doubles.subarray(at - n, at);
  };
  const result: ChunkResult = {
    entropy: take(h.rows),
    distance: take(h.rows),
    sink: take(h.rows),
    local: take(h.rows),
    cellRowStart: h.cellRowStart,
    top: h.top,
  };
  if (h.received) result.received = take(h.received);
  if (h.cells) result.cells = take(h.cells);
  if (h.weights) result.weights = new Float32Array(copy.buffer, start + f64 * 8, h.weights);
  return result;
}
