import { headRows, type AttentionSpec } from '@longattn/attention';
import type { TensorReader } from '@longattn/tensor';
import { f32Bytes, type BlobStore } from '../blobs/blob-store.ts';
import type { JobOutput } from '../output.ts';

/** Rows moved per request: about 1 MiB, so memory stays bounded whatever the tensor's size. */
const CHUNK_BYTES = 1 << 20;

/** Chunks in flight at once (each with its own buffer). */
const IN_FLIGHT = 4;

/**
 * Runs async steps with at most IN_FLIGHT in flight, each lent one of IN_FLIGHT buffers of
 * `floats` float32s, reused from chunk to chunk (fresh memory for every chunk would cost a page
 * fault per 4 KiB, which here is most of a copy's time). The first failure is thrown after the
 * rest settle.
 */
async function bounded(floats: number, steps: Iterable<(buffer: Float32Array) => Promise<void>>): Promise<void> {
  const free = Array.from({ length: IN_FLIGHT }, () => new Float32Array(floats));
  const running = new Set<Promise<void>>();
  let failure: unknown;
  for (const step of steps) {
    if (failure !== undefined) break;
    const buffer = free.pop()!;
    const p: Promise<void> = step(buffer)
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => {
        running.delete(p);
        free.push(buffer);
      });
    running.add(p);
    if (running.size >= IN_FLIGHT) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure !== undefined) throw failure;
}

/** Rows per chunk: about `bytes` (CHUNK_BYTES by default). */
const rowsPer = (D: number, bytes = CHUNK_BYTES) => Math.max(1, Math.floor(bytes / (D * 4)));

/** Every (b, head, first row, rows) chunk of a [B, heads, seq, D] tensor, about `bytes` each. */
function* chunks(B: number, heads: number, seq: number, D: number, bytes = CHUNK_BYTES): Generator<[number, number, number, number]> {
  const rows = rowsPer(D, bytes);
  for (let b = 0; b < B; b++) for (let h = 0; h < heads; h++) for (let s = 0; s < seq; s += rows) yield [b, h, s, Math.min(rows, seq - s)];
}

/**
 * Streams an input tensor into a blob as float32 in bhsd order ([B, heads, seq, D], each head's
 * rows contiguous, whatever the input's layout), so a worker's block is one byte range. Writes
 * are the store's `writeBytes` (S3: 8 MiB parts) or CHUNK_BYTES.
 */
export async function uploadTensor(
  store: BlobStore,
  name: string,
  reader: TensorReader,
  spec: AttentionSpec,
  heads: number,
  seq: number,
): Promise<void> {
  const { B, D, layout } = spec;
  const bytes = store.writeBytes ?? CHUNK_BYTES;
  await bounded(
    rowsPer(D, bytes) * D,
    (function* () {
      for (const [b, h, s, rows] of chunks(B, heads, seq, D, bytes)) {
        yield async (buffer) => {
          const where = headRows(layout, b, h, heads, seq, D);
          const data = reader.readRuns(where.first + s * where.stride, rows, where.stride, D, buffer.subarray(0, rows * D));
          await store.write(name, ((b * heads + h) * seq + s) * D * 4, f32Bytes(data));
        };
      }
    })(),
  );
  await sealInput(store, name, spec, heads, seq);
}

/** Seals an input blob whose float32 bhsd data was written in place (an upload): the header uploadTensor gives. */
export async function sealInput(store: BlobStore, name: string, spec: AttentionSpec, heads: number, seq: number): Promise<void> {
  const { B, D } = spec;
  await store.seal(name, { size: B * heads * seq * D * 4, meta: { dtype: 'f32', shape: [B, heads, seq, D], layout: 'bhsd' } });
}

/** Streams O and LSE blobs (bhsd) into a job's output files, which give O Q's shape and layout. */
export async function downloadOutputs(
  store: BlobStore,
  names: { out: string; lse: string },
  spec: AttentionSpec,
  output: JobOutput,
): Promise<void> {
  const { B, H, Sq, D } = spec;
  await bounded(
    rowsPer(D) * (D + 1),
    (function* () {
      for (const [b, h, s, rows] of chunks(B, H, Sq, D)) {
        yield async (buffer) => {
          const row = (b * H + h) * Sq + s;
          const o = buffer.subarray(0, rows * D);
          const lse = buffer.subarray(rows * D, rows * (D + 1));
          await Promise.all([store.readInto(names.out, row * D * 4, f32Bytes(o)), store.readInto(names.lse, row * 4, f32Bytes(lse))]);
          output.write({ b, h, qStart: s, rows }, { rows, D, kStart: 0, o, lse });
        };
      }
    })(),
  );
}
