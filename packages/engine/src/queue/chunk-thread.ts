import type { AttentionSpec } from '@longattn/attention';
import { bytesToF32, f32Bytes, type BlobStore } from '../blobs/blob-store.ts';
import { FsBlobStore } from '../blobs/fs-store.ts';
import { openBlobStore } from '../blobs/open.ts';
import type { BlockSource } from '../block-source.ts';
import { inspectChunk, type ChunkRef } from '../inspect/chunk.ts';
import { encodeChunkResult } from '../inspect/chunk-codec.ts';
import type { InspectSettings } from '../inspect/settings.ts';
import { BlockCache } from './block-cache.ts';
import { blobNames, inputRows } from './blob-layout.ts';

/**
 * What a worker sends a chunk thread: the chunks of one chunk job of an inspect job. The thread
 * reads the rows' LSE (out/lse), Q rows and K blocks itself and stores each chunk's result as
 * blob c/N, so no tensor crosses the thread boundary.
 */
export interface ChunkTask {
  job: string;
  spec: AttentionSpec;
  settings: InspectSettings;
  /** Blob store location and the queue's Redis URL (see openBlobStore). */
  store: string;
  redis: string;
  /** This thread's cache of whole K heads (stores other than fs). */
  cacheBytes: number;
  chunks: { index: number; chunk: ChunkRef }[];
}

const stores = new Map<string, BlobStore>();
let cache: BlockCache | undefined;

function storeFor(task: ChunkTask): BlobStore {
  let store = stores.get(task.store);
  if (!store) {
    store = openBlobStore(task.store, task.redis);
    stores.set(task.store, store);
  }
  return store;
}

/**
 * fs: blocks read on demand from the blob files (the page cache holds them), each call a fresh
 * array (inspectChunk may hold several). Elsewhere: the chunk's Q rows, and its kv head's whole K
 * ([Sk, D], through the LRU cache, so the next chunks of the head reuse it): a thread's memory is
 * then bounded by Sk·D·4 bytes per cached head, not by the blocks.
 */
async function chunkSource(task: ChunkTask, store: BlobStore, chunk: ChunkRef): Promise<BlockSource & { close(): void }> {
  const { job, spec } = task;
  const kvh = Math.floor(chunk.h / (spec.H / spec.Hk));
  if (store instanceof FsBlobStore) {
    const q = store.openReader(blobNames.input(job, 'q'));
    const k = store.openReader(blobNames.input(job, 'k'));
    const read = (reader: typeof q, which: 'q' | 'k') => (b: number, head: number, start: number, count: number) => {
      const range = inputRows(job, spec, which, b, head, start, count);
      const block = new Float32Array(range.length / 4);
      reader.readInto(range.offset, f32Bytes(block));
      return block;
    };
    const refuse = () => {
      throw new Error('inspect reads no values');
    };
    return {
      queries: read(q, 'q'),
      keys: read(k, 'k'),
      values: refuse,
      close: () => {
        q.close();
        k.close();
      },
    };
  }
  const qRange = inputRows(job, spec, 'q', chunk.b, chunk.h, chunk.rowStart, chunk.rows);
  const kRange = inputRows(job, spec, 'k', chunk.b, kvh, 0, spec.Sk);
  const [q, k] = await Promise.all([
    store.read(qRange.name, qRange.offset, qRange.length).then(bytesToF32),
    cache!.get(`${store.location}|${kRange.name}@${kRange.offset}`, async () =>
      bytesToF32(await store.read(kRange.name, kRange.offset, kRange.length)),
    ),
  ]);
  return {
    queries: () => q,
    keys: (_b, _h, start, count) => k.subarray(start * spec.D, (start + count) * spec.D),
    values: () => {
      throw new Error('inspect reads no values');
    },
    close: () => {},
  };
}

/** Computes each chunk (inspectChunk, the local engine's own function) and stores its result. */
export default async function runChunks(task: ChunkTask): Promise<void> {
  cache ??= new BlockCache(task.cacheBytes);
  const store = storeFor(task);
  const { job, spec } = task;
  for (const { index, chunk } of task.chunks) {
    const at = (chunk.b * spec.H + chunk.h) * spec.Sq + chunk.rowStart;
    const lse = bytesToF32(await store.read(blobNames.lse(job), at * 4, chunk.rows * 4)).slice();
    const source = await chunkSource(task, store, chunk);
    let bytes: Uint8Array;
    try {
      bytes = encodeChunkResult(inspectChunk(spec, task.settings, source, chunk, lse));
    } finally {
      source.close();
    }
    await store.putMany([{ name: blobNames.chunk(job, index), data: bytes }]);
  }
}
