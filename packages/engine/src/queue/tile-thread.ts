import { setTimeout as sleep } from 'node:timers/promises';
import { maskRule, type AttentionSpec, type QBlockPlan, type Tile } from '@longattn/attention';
import { getBackend, type KernelOptions, type TileKernel } from '@longattn/kernels';
import { f32Bytes, type BlobStore } from '../blobs/blob-store.ts';
import { openBlobStore } from '../blobs/open.ts';
import type { BlockSource } from '../block-source.ts';
import { computeQBlock } from '../compute-block.ts';
import { packResult } from '../local/task.ts';
import { BlockCache } from './block-cache.ts';
import { blobNames, inputRows, outputRows, type BlobRange } from './blob-layout.ts';

/**
 * What a worker sends a kernel thread: the work of one tile job. The thread reads the blocks
 * itself (its own blob-store connection and LRU cache) and writes the results itself, so no
 * tensor crosses the thread boundary: blocks live in plain memory that kernels (onnxruntime)
 * take without a copy.
 */
export interface TileTask {
  backend: string;
  kernelOptions: KernelOptions;
  job: string;
  spec: AttentionSpec;
  /** Blob store location and the queue's Redis URL (see openBlobStore). */
  store: string;
  redis: string;
  /** This thread's block cache size. */
  cacheBytes: number;
  /**
   * Whole q-blocks: each computed exactly as the local engine does (computeQBlock: the kernel
   * on every tile, then merge()), its rows written straight into the output blobs.
   */
  blocks: QBlockPlan[];
  /** Tiles of q-blocks split across jobs, with their q-block's index: one partial blob each. */
  tiles: { qi: number; tile: Tile }[];
  /** Sleep this long before each tile (fault tests: a kill lands between q-blocks). */
  throttleMs: number;
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

const rangeKey = (r: BlobRange) => `${r.name}@${r.offset}+${r.length}`;

/**
 * Every block the task reads, fetched through the cache (concurrently), as a BlockSource:
 * [count, D] float32 each. Blocks stay valid however the cache evicts meanwhile.
 */
async function prefetch(task: TileTask, store: BlobStore): Promise<BlockSource> {
  const { job, spec } = task;
  const ranges = new Map<string, BlobRange>();
  const want = (r: BlobRange) => ranges.set(rangeKey(r), r);
  const tiles = [...task.blocks.flatMap((b) => b.tiles), ...task.tiles.map((t) => t.tile)];
  for (const block of task.blocks) want(inputRows(job, spec, 'q', block.b, block.h, block.qStart, block.rows));
  for (const t of tiles) {
    want(inputRows(job, spec, 'q', t.b, t.h, t.qStart, t.rows));
    want(inputRows(job, spec, 'k', t.b, t.kvh, t.kStart, t.keys));
    want(inputRows(job, spec, 'v', t.b, t.kvh, t.kStart, t.keys));
  }
  const blocks = new Map<string, Float32Array>();
  await Promise.all(
    [...ranges].map(async ([key, r]) => {
      const block = await cache!.get(`${store.location}|${key}`, async () => {
        const data = new Float32Array(r.length / 4);
        await store.readInto(r.name, r.offset, f32Bytes(data));
        return data;
      });
      blocks.set(key, block);
    }),
  );
  const get = (which: 'q' | 'k' | 'v') => (b: number, head: number, start: number, count: number) => blocks.get(rangeKey(inputRows(job, spec, which, b, head, start, count)))!;
  return { queries: get('q'), keys: get('k'), values: get('v') };
}

/**
 * Reads, computes and stores a tile job's work: whole q-blocks merged and written into the
 * output blobs (positional writes: q-blocks never overlap, and a retry writes the same bits),
 * split q-blocks' tiles as partials. Replies with the bytes it read (cache misses).
 */
export default async function runTiles(task: TileTask): Promise<{ missBytes: number }> {
  cache ??= new BlockCache(task.cacheBytes);
  const missesBefore = cache.missBytes;
  const store = storeFor(task);
  const kernel = await kernelFor(task);
  const source = await prefetch(task, store);
  const { job, spec } = task;
  const writes: Promise<void>[] = [];
  // Writes overlap the next q-block's compute; a failure surfaces at the end (Promise.all below).
  const track = (write: Promise<void>) => {
    write.catch(() => {});
    writes.push(write);
  };
  const throttle = (tiles: number) => (task.throttleMs > 0 ? sleep(task.throttleMs * tiles) : undefined);
  for (const block of task.blocks) {
    await throttle(block.tiles.length);
    const merged = await computeQBlock(kernel, spec, block, source);
    const to = outputRows(job, spec, block);
    track(store.write(to.o.name, to.o.offset, f32Bytes(merged.o)));
    track(store.write(to.lse.name, to.lse.offset, f32Bytes(merged.lse)));
  }
  const rule = maskRule(spec);
  const partials = [];
  for (const { qi, tile: t } of task.tiles) {
    await throttle(1);
    const p = await kernel.run({
      rows: t.rows,
      keys: t.keys,
      D: spec.D,
      scale: spec.scale,
      qStart: t.qStart,
      kStart: t.kStart,
      rule,
      full: t.full,
      q: source.queries(t.b, t.h, t.qStart, t.rows),
      k: source.keys(t.b, t.kvh, t.kStart, t.keys),
      v: source.values(t.b, t.kvh, t.kStart, t.keys),
    });
    partials.push({ name: blobNames.partial(job, qi, t.kBlock), data: f32Bytes(packResult(p.o, p.lse)) });
  }
  if (partials.length > 0) track(store.putMany(partials));
  await Promise.all(writes);
  return { missBytes: cache.missBytes - missesBefore };
}
