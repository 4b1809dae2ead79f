import type { MaskRule } from '@longattn/attention';
import { getBackend, type KernelOptions, type TileKernel } from '@longattn/kernels';
import { f32Bytes, type BlobStore } from '../blobs/blob-store.ts';
import { openBlobStore } from '../blobs/open.ts';
import { packResult } from '../local/task.ts';
import { BlockCache } from './block-cache.ts';

/** A byte range of a blob: one block of float32 rows. */
export interface BlockRef {
  name: string;
  offset: number;
  length: number;
}

/** One tile of a task: where it sits, where its q [rows, D], k and v [keys, D] blocks are, where its partial goes. */
export interface TaskTile {
  rows: number;
  keys: number;
  qStart: number;
  kStart: number;
  full: boolean;
  q: BlockRef;
  k: BlockRef;
  v: BlockRef;
  partial: string;
}

/**
 * What a worker sends a kernel thread: every tile of one tile job. The thread reads the blocks
 * itself (its own blob-store connection and LRU cache), computes the tiles in order and stores
 * each tile's partial as its own blob, so no tensor crosses the thread boundary: blocks live in
 * plain memory that kernels (onnxruntime) take without a copy.
 */
export interface TileTask {
  backend: string;
  kernelOptions: KernelOptions;
  D: number;
  scale: number;
  rule: MaskRule;
  /** Blob store location and the queue's Redis URL (see openBlobStore). */
  store: string;
  redis: string;
  /** This thread's block cache size. */
  cacheBytes: number;
  tiles: TaskTile[];
}

const kernels = new Map<string, Promise<TileKernel>>();
const stores = new Map<string, BlobStore>();
let cache: BlockCache | undefined;

function kernelFor(task: TileTask): Promise<TileKernel> {
  const key = `${task.backend}|${JSON.stringify(task.kernelOptions)}`;
  let kernel = kernels.get(key);
  if (!kernel) {
    kernel = getBackend(task.backend).create(task.kernelOptions);
    kernels.set(key, kernel);
  }
  return kernel;
}

function storeFor(task: TileTask): BlobStore {
  let store = stores.get(task.store);
  if (!store) {
    store = openBlobStore(task.store, task.redis);
    stores.set(task.store, store);
  }
  return store;
}

function readBlock(store: BlobStore, ref: BlockRef): Promise<Float32Array> {
  return cache!.get(`${store.location}|${ref.name}@${ref.offset}+${ref.length}`, async () => {
    const block = new Float32Array(ref.length / 4);
    await store.readInto(ref.name, ref.offset, f32Bytes(block));
    return block;
  });
}

/** Reads, computes and stores a tile job's tiles; replies with the bytes it read (cache misses). */
export default async function runTiles(task: TileTask): Promise<{ missBytes: number }> {
  cache ??= new BlockCache(task.cacheBytes);
  const missesBefore = cache.missBytes;
  const store = storeFor(task);
  const kernel = await kernelFor(task);
  const blocks = await Promise.all(task.tiles.map((t) => Promise.all([readBlock(store, t.q), readBlock(store, t.k), readBlock(store, t.v)])));
  const { D, scale, rule } = task;
  const partials = [];
  for (const [i, t] of task.tiles.entries()) {
    const [q, k, v] = blocks[i]!;
    const p = await kernel.run({ rows: t.rows, keys: t.keys, D, scale, qStart: t.qStart, kStart: t.kStart, rule, full: t.full, q, k, v });
    partials.push({ name: t.partial, data: f32Bytes(packResult(p.o, p.lse)) });
  }
  await store.putMany(partials);
  return { missBytes: cache.missBytes - missesBefore };
}

/** Floats of a stored partial: [o (rows·D), lse (rows)]. */
export function partialLength(rows: number, D: number): number {
  return rows * D + rows;
}
