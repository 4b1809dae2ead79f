import { setTimeout as sleep } from 'node:timers/promises';
import { tileKeySpans, widenPartial, type AttentionSpec, type QBlockPlan, type Tile } from '@longattn/attention';
import type { KernelOptions } from '@longattn/kernels';
import { bytesToF32, f32Bytes, type BlobStore } from '../blobs/blob-store.ts';
import { FsBlobStore } from '../blobs/fs-store.ts';
import { openBlobStore } from '../blobs/open.ts';
import type { BlockSource } from '../block-source.ts';
import { computeQBlock, computeTiles } from '../compute-block.ts';
import { computeLinearQBlock, linearStates, sourceReader, type KeyValueReader } from '../linear-block.ts';
import { packPartials } from '../packed.ts';
import { BlockCache } from './block-cache.ts';
import { blobNames, inputRows, outputRows, type BlobRange } from './blob-layout.ts';
import { threadKernel } from '../thread-kernels.ts';
import { runProjectTask, type ProjectTask } from './project-thread.ts';

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
  /** The plan's key block: K/V are read and cached as whole aligned key blocks (tiles trimmed to their visible keys take views). */
  blockK: number;
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

const stores = new Map<string, BlobStore>();
let cache: BlockCache | undefined;
/** Settles when the last task to arrive has finished computing (the worker sends up to two at once). */
let computing: Promise<void> = Promise.resolve();

function storeFor(task: Pick<TileTask, 'store' | 'redis'>): BlobStore {
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
 * [count, D] float32 each. Queries are read per q-block; keys and values per aligned key block
 * [kb·blockK, (kb+1)·blockK) (two of them for a tile that straddles one), which every tile of
 * that block (trimmed or not) views, so the cache holds each K/V block once. Blocks stay valid however the cache evicts meanwhile.
 */
async function prefetch(task: TileTask, store: BlobStore): Promise<BlockSource> {
  const { job, spec, blockK } = task;
  const ranges = new Map<string, BlobRange>();
  const want = (r: BlobRange) => ranges.set(rangeKey(r), r);
  // The aligned key blocks a tile's keys [start, start+count) fall in: one block for a tile cut on
  // the blockK grid, two for one cut from a window's band start (the planner's band-aligned tiles).
  const keyBlock = (which: 'k' | 'v', b: number, kvh: number, start: number, count: number) => {
    const first = Math.floor(start / blockK) * blockK;
    const end = Math.min(spec.Sk, Math.max(first + blockK, Math.ceil((start + count) / blockK) * blockK));
    return { first, range: inputRows(job, spec, which, b, kvh, first, end - first) };
  };
  // A linear state tile reads no K/V here: its states come through stateReader, block by block, when not yet built.
  const tiles = [...task.blocks.flatMap((b) => b.tiles), ...task.tiles.map((t) => t.tile)].filter((t) => !(spec.linear && t.full));
  for (const block of task.blocks) want(inputRows(job, spec, 'q', block.b, block.h, block.qStart, block.rows));
  for (const t of tiles) {
    want(inputRows(job, spec, 'q', t.b, t.h, t.qStart, t.rows));
    const spans = tileKeySpans(t); // a pattern tile may gather keys from several runs: each read as computeTiles asks
    for (let x = 0; x < spans.length; x += 2) {
      want(keyBlock('k', t.b, t.kvh, spans[x]!, spans[x + 1]! - spans[x]!).range);
      want(keyBlock('v', t.b, t.kvh, spans[x]!, spans[x + 1]! - spans[x]!).range);
    }
  }
  const blocks = new Map<string, Float32Array>();
  const t0 = performance.now();
  await Promise.all(
    [...ranges].map(async ([key, r]) => {
      const block = await cache!.get(`${store.location}|${key}`, async () => bytesToF32(await store.read(r.name, r.offset, r.length)));
      blocks.set(key, block);
    }),
  );
  reads.ms += performance.now() - t0;
  const kv = (which: 'k' | 'v') => (b: number, kvh: number, start: number, count: number) => {
    const { first, range } = keyBlock(which, b, kvh, start, count);
    return blocks.get(rangeKey(range))!.subarray((start - first) * spec.D, (start - first + count) * spec.D);
  };
  return {
    queries: (b, h, start, count) => blocks.get(rangeKey(inputRows(job, spec, 'q', b, h, start, count)))!,
    keys: kv('k'),
    values: kv('v'),
  };
}

/** K/V key blocks for linear attention's states, fetched through the thread's cache as the aligned blocks prefetch asks for. */
function stateReader(task: TileTask, store: BlobStore): KeyValueReader {
  const fetch = (which: 'k' | 'v', b: number, kvh: number, start: number, count: number) => {
    const r = inputRows(task.job, task.spec, which, b, kvh, start, count);
    return cache!.get(`${store.location}|${rangeKey(r)}`, async () => bytesToF32(await store.read(r.name, r.offset, r.length)));
  };
  return async (b, kvh, start, count) => {
    const [k, v] = await Promise.all([fetch('k', b, kvh, start, count), fetch('v', b, kvh, start, count)]);
    return { k, v };
  };
}

/** This thread's reads so far: time spent waiting for blocks (cache misses and direct reads), bytes of direct reads. */
const reads = { ms: 0, directBytes: 0 };

/** Per-thread buffers a direct source reads into, kept across tasks (fresh memory costs page faults). */
const scratch = { q: new Float32Array(0), k: new Float32Array(0), v: new Float32Array(0) };

/**
 * Blocks read on demand straight from the fs store's files into this thread's reused buffers,
 * exactly as the local engine reads its inputs: no cache, no fresh memory per block (the page
 * cache holds the files). A block is valid until the next read of the same tensor, which is
 * how computeQBlock and the tile loop below use them (one tile at a time).
 */
function directSource(task: TileTask, store: FsBlobStore): BlockSource & { close(): void } {
  const { job, spec } = task;
  const readers = {
    q: store.openReader(blobNames.input(job, 'q')),
    k: store.openReader(blobNames.input(job, 'k')),
    v: store.openReader(blobNames.input(job, 'v')),
  };
  const read = (which: 'q' | 'k' | 'v') => (b: number, head: number, start: number, count: number) => {
    const range = inputRows(job, spec, which, b, head, start, count);
    if (scratch[which].byteLength < range.length) scratch[which] = new Float32Array(range.length / 4);
    const block = scratch[which].subarray(0, range.length / 4);
    const t0 = performance.now();
    readers[which].readInto(range.offset, f32Bytes(block));
    reads.ms += performance.now() - t0;
    reads.directBytes += range.length;
    return block;
  };
  return {
    queries: read('q'),
    keys: read('k'),
    values: read('v'),
    close: () => {
      for (const r of Object.values(readers)) r.close();
    },
  };
}

/**
 * Reads, computes and stores a tile job's work: whole q-blocks merged and written into the
 * output blobs (positional writes: q-blocks never overlap, and a retry writes the same bits),
 * split q-blocks' tiles as partials. Replies with what its reads cost (ReadCounters).
 */
export default async function runTiles(task: TileTask | ProjectTask): Promise<ReadCounters> {
  if ('kind' in task) {
    await runProjectTask(task, storeFor(task)); // a layer job's projection job (project-thread.ts)
    return { bytes: 0, hits: 0, misses: 0, readMs: 0 };
  }
  cache ??= new BlockCache(task.cacheBytes);
  const before = { ...counters(cache) };
  const store = storeFor(task);
  const kernel = await threadKernel(task.backend, task.kernelOptions);
  // fs: direct reads from the page cache; elsewhere (Redis) every block once, through the cache.
  const direct = store instanceof FsBlobStore ? directSource(task, store) : undefined;
  const source = direct ?? (await prefetch(task, store));
  const { job, spec } = task;
  const writes: Promise<void>[] = [];
  // Writes overlap the next q-block's compute; a failure surfaces at the end (Promise.all below).
  const track = (write: Promise<void>) => {
    write.catch(() => {});
    writes.push(write);
  };
  const throttle = (tiles: number) => (task.throttleMs > 0 ? sleep(task.throttleMs * tiles) : undefined);
  // Tasks compute one at a time, in arrival order; a second task's reads overlap this one's compute.
  const earlier = computing;
  let done!: () => void;
  computing = new Promise<void>((resolve) => (done = resolve));
  await earlier;
  try {
    const linear = spec.linear ? linearStates(job, spec, task.blockK) : undefined;
    const read = linear ? (direct ? sourceReader(direct) : stateReader(task, store)) : undefined;
    for (const block of task.blocks) {
      await throttle(block.tiles.length);
      const merged = linear
        ? await computeLinearQBlock(spec, block, source, linear, read!)
        : await computeQBlock(kernel, spec, block, source);
      const to = outputRows(job, spec, block);
      track(store.write(to.o.name, to.o.offset, f32Bytes(merged.o)));
      track(store.write(to.lse.name, to.lse.offset, f32Bytes(merged.lse)));
    }
    const partials = await computeTiles(
      kernel,
      spec,
      task.tiles.map(({ tile }) => tile),
      source,
      () => throttle(1),
    );
    const stored = partials.map((p, i) => ({
      name: blobNames.partial(job, task.tiles[i]!.qi, task.tiles[i]!.tile.kBlock),
      data: f32Bytes(packPartials([widenPartial(p)])), // a blob holds the q-block's rows (blob-layout.ts)
    }));
    if (stored.length > 0) track(store.putMany(stored));
  } finally {
    direct?.close();
    done();
  }
  await Promise.all(writes);
  const after = counters(cache);
  return {
    bytes: after.bytes - before.bytes,
    hits: after.hits - before.hits,
    misses: after.misses - before.misses,
    readMs: after.readMs - before.readMs,
  };
}

/**
 * A task's reads: bytes fetched from the blob store (block-cache misses, or direct fs reads),
 * block-cache hits and misses (K/V and Q blocks; fs reads bypass the cache), and milliseconds
 * spent waiting for blocks. Workers add them up and log them (docs/scaling.md, "Data movement").
 */
export interface ReadCounters {
  bytes: number;
  hits: number;
  misses: number;
  readMs: number;
}

function counters(c: BlockCache): ReadCounters {
  return { bytes: c.missBytes + reads.directBytes, hits: c.hits, misses: c.misses, readMs: reads.ms };
}
