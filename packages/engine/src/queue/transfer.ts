import { headRows, type AttentionSpec } from '@longattn/attention';
import type { TensorReader } from '@longattn/tensor';
import { bytesToF32, f32Bytes, type BlobStore } from '../blobs/blob-store.ts';
import type { JobOutput } from '../output.ts';

/** Rows moved per request: about 1 MiB, so memory stays bounded whatever the tensor's size. */
const CHUNK_BYTES = 1 << 20;

/** Runs async steps with at most `limit` in flight; the first failure is thrown after the rest settle. */
async function bounded(steps: Iterable<() => Promise<void>>, limit: number): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: unknown;
  for (const step of steps) {
    if (failure !== undefined) break;
    const p: Promise<void> = step().catch((error: unknown) => {
      failure ??= error;
    }).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure !== undefined) throw failure;
}

/** Every (b, head, first row, rows) chunk of a [B, heads, seq, D] tensor, about CHUNK_BYTES each. */
function* chunks(B: number, heads: number, seq: number, D: number): Generator<[number, number, number, number]> {
  const rowsPer = Math.max(1, Math.floor(CHUNK_BYTES / (D * 4)));
  for (let b = 0; b < B; b++) for (let h = 0; h < heads; h++) for (let s = 0; s < seq; s += rowsPer) yield [b, h, s, Math.min(rowsPer, seq - s)];
}

/**
 * Streams an input tensor into a blob as float32 in bhsd order ([B, heads, seq, D], each head's
 * rows contiguous, whatever the input's layout), so a worker's block is one byte range.
 */
export async function uploadTensor(store: BlobStore, name: string, reader: TensorReader, spec: AttentionSpec, heads: number, seq: number): Promise<void> {
  const { B, D, layout } = spec;
  await bounded(
    (function* () {
      for (const [b, h, s, rows] of chunks(B, heads, seq, D)) {
        yield async () => {
          const where = headRows(layout, b, h, heads, seq, D);
          const data = reader.readRuns(where.first + s * where.stride, rows, where.stride, D);
          await store.write(name, ((b * heads + h) * seq + s) * D * 4, f32Bytes(data));
        };
      }
    })(),
    4,
  );
  await store.seal(name, { size: B * heads * seq * D * 4, meta: { dtype: 'f32', shape: [B, heads, seq, D], layout: 'bhsd' } });
}

/** Streams O and LSE blobs (bhsd) into a job's output files, which give O Q's shape and layout. */
export async function downloadOutputs(store: BlobStore, names: { out: string; lse: string }, spec: AttentionSpec, output: JobOutput): Promise<void> {
  const { B, H, Sq, D } = spec;
  await bounded(
    (function* () {
      for (const [b, h, s, rows] of chunks(B, H, Sq, D)) {
        yield async () => {
          const row = (b * H + h) * Sq + s;
          const [o, lse] = await Promise.all([store.read(names.out, row * D * 4, rows * D * 4), store.read(names.lse, row * 4, rows * 4)]);
          output.write({ b, h, qStart: s, rows }, { rows, D, kStart: 0, o: bytesToF32(o), lse: bytesToF32(lse) });
        };
      }
    })(),
    4,
  );
}
