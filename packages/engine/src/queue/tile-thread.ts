import { setTimeout as sleep } from 'node:timers/promises';
import { tileKeySpans, widenPartial, type AttentionSpec, type QBlockPlan } from '@longattn/attention';
import type { KernelOptions } from '@longattn/kernels';
import { bytesToF32, f32Bytes, type BlobStore } from '../blobs/blob-store.ts';
import { FsBlobStore } from '../blobs/fs-store.ts';
import { openBlobStore } from '../blobs/open.ts';
import type { BlockOutputs } from '../block-outputs.ts';
import type { BlockSource } from '../block-source.ts';
import { computeQBlock, computeTiles } from '../compute-block.ts';
import { computeLinearQBlock, linearStates, sourceReader, type KeyValueReader } from '../linear-block.ts';
import { packedLength, packPartials } from '../packed.ts';
import { BufferPool } from './buffer-pool.ts';
import { BlockCache } from './block-cache.ts';
import { blobNames, inputRows, splitRuns, type BlobRange, type SplitTile } from './blob-layout.ts';
import { OutputRuns } from './output-runs.ts';
import { readAhead } from './read-ahead.ts';
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
  /** Tiles of q-blocks split across jobs, with their q-block's index and run: one partial blob per run (blob-layout.ts). */
  tiles: SplitTile[];
  /** Sleep this long before each tile (fault tests: a kill lands between q-blocks). */
  throttleMs: number;
  /**
   * `'lse'` for an inspect job's LSE pass (lseOnly(manifest)): V-free tiles, no V read, rows and
   * partials [rows, 0] + lse (block-outputs.ts). Never `'o'`: the queue keeps every LSE (`result --lse` may come later).
   */
  outputs: Exclude<BlockOutputs, 'o'>;
}

const stores = new Map<string, BlobStore>();
let cache: BlockCache | undefined;
/** Settles when the last task to arrive has finished computing (the worker sends several at once). */
let computing: Promise<void> = Promise.resolve();
/** Settles when the last task to arrive has read its blocks (or failed to). */
let reading: Promise<void> = Promise.resolve();

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
 * Every block the task reads, as a BlockSource: [count, D] float32 each. Queries are read once
 * per task, past the cache (no other task of this worker reads them), with contiguous q-blocks'
 * rows (consecutive q-blocks of a head, the next head's first) in one read of at most
 * MAX_READ_BYTES. Keys and values go through the cache as aligned key blocks [kb·blockK,
 * (kb+1)·blockK) (two of them for a tile that straddles one), which every tile of that block
 * (trimmed or not) views, so the cache holds each K/V block once; the blocks the cache misses
 * are fetched in runs of consecutive blocks, one read each (readRuns). Blocks stay valid however
 * the cache evicts meanwhile.
 */
async function prefetch(task: TileTask, store: BlobStore, counts: ReadCounters): Promise<BlockSource> {
  const { job, spec, blockK } = task;
  const queries = new Map<string, BlobRange>();
  const keyBlocks = new Map<string, BlobRange>();
  // The aligned key blocks a tile's keys [start, start+count) fall in: one block for a tile cut on
  // the blockK grid, two for one cut from a window's band start (the planner's band-aligned tiles).
  const keyBlock = (which: 'k' | 'v', b: number, kvh: number, start: number, count: number) => {
    const first = Math.floor(start / blockK) * blockK;
    const end = Math.min(spec.Sk, Math.max(first + blockK, Math.ceil((start + count) / blockK) * blockK));
    return { first, range: inputRows(job, spec, which, b, kvh, first, end - first) };
  };
  // A linear state tile reads no K/V here: its states come through stateReader, block by block, when not yet built.
  const tiles = [...task.blocks.flatMap((b) => b.tiles), ...task.tiles.map((t) => t.tile)].filter((t) => !(spec.linear && t.full));
  const wantQ = (r: BlobRange) => queries.set(rangeKey(r), r);
  for (const block of task.blocks) wantQ(inputRows(job, spec, 'q', block.b, block.h, block.qStart, block.rows));
  for (const t of tiles) {
    wantQ(inputRows(job, spec, 'q', t.b, t.h, t.qStart, t.rows));
    // A pattern tile may gather keys from several runs: each read as computeTiles asks. A band tile may
    // also run its parts (a kernel without a band path, or a wide band's LSE from its parts: band-block.ts).
    const spans = [tileKeySpans(t), ...(t.band?.parts ?? []).map(tileKeySpans)].flat();
    for (let x = 0; x < spans.length; x += 2) {
      for (const which of task.outputs === 'lse' ? (['k'] as const) : (['k', 'v'] as const)) {
        const { range } = keyBlock(which, t.b, t.kvh, spans[x]!, spans[x + 1]! - spans[x]!);
        keyBlocks.set(rangeKey(range), range);
      }
    }
  }
  const blocks = new Map<string, Float32Array>();
  const t0 = performance.now();
  const cached = (key: string) => `${store.location}|${key}`;
  const misses = [...keyBlocks].filter(([key]) => !cache!.has(cached(key))).map(([, r]) => r);
  counts.misses += misses.length;
  counts.hits += keyBlocks.size - misses.length;
  // The blocks its reads fetch ahead for the task's successors (read-ahead.ts) count as misses: they are fetched.
  const ahead = readAhead(spec, blockK, misses, (r) => keyBlocks.has(rangeKey(r)) || cache!.has(cached(rangeKey(r))), MAX_READ_BYTES);
  counts.misses += ahead.length;
  for (const r of [...misses, ...ahead]) counts.bytes += r.length;
  const loads = new Map<string, Promise<Float32Array>>();
  for (const { range, loading } of readRuns(store, [...misses, ...ahead])) loads.set(rangeKey(range), loading);
  // Read-ahead blocks go into the cache only (a later task of this head takes them from there).
  for (const r of ahead) cache!.get(cached(rangeKey(r)), () => loads.get(rangeKey(r))!).catch(() => {});
  await Promise.all([
    ...readRuns(store, [...queries.values()]).map(async ({ range, loading }) => {
      blocks.set(rangeKey(range), await loading);
      counts.bytes += range.length;
    }),
    // Checked and asked for in the same tick, so a block counted a miss above is loaded by its run.
    ...[...keyBlocks].map(async ([key, r]) => {
      const load = () => loads.get(key) ?? store.read(r.name, r.offset, r.length).then(bytesToF32);
      blocks.set(key, await cache!.get(cached(key), load));
    }),
  ]);
  counts.readMs += performance.now() - t0;
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

/**
 * One read per run of adjacent ranges of a blob (sorted by offset; a run stops at MAX_READ_BYTES),
 * each range then a view of its run's bytes: `loading` per range. On S3 a read is one ranged GET
 * per input part it overlaps (docs/scaling.md, "Data movement"), so fewer, bigger reads are fewer requests.
 */
function readRuns(store: BlobStore, ranges: readonly BlobRange[]): { range: BlobRange; loading: Promise<Float32Array> }[] {
  const sorted = [...ranges].sort((a, b) => (a.name === b.name ? a.offset - b.offset : a.name < b.name ? -1 : 1));
  const out: { range: BlobRange; loading: Promise<Float32Array> }[] = [];
  for (let i = 0; i < sorted.length; ) {
    const first = sorted[i]!;
    let end = first.offset + first.length;
    let j = i + 1;
    for (; j < sorted.length; j++) {
      const r = sorted[j]!;
      if (r.name !== first.name || r.offset !== end || r.offset + r.length - first.offset > MAX_READ_BYTES) break;
      end += r.length;
    }
    const run = store.read(first.name, first.offset, end - first.offset).then(bytesToF32);
    run.catch(() => {});
    for (const r of sorted.slice(i, j)) {
      const at = (r.offset - first.offset) / 4;
      out.push({ range: r, loading: run.then((all) => all.subarray(at, at + r.length / 4)) });
    }
    i = j;
  }
  return out;
}

/** The most bytes one read of adjacent blocks fetches (8 MiB: an S3 input part, S3_WRITE_BYTES). */
const MAX_READ_BYTES = 8 << 20;

/** K/V key blocks for linear attention's states, fetched through the thread's cache as the aligned blocks prefetch asks for. */
function stateReader(task: TileTask, store: BlobStore, counts: ReadCounters): KeyValueReader {
  const fetch = (which: 'k' | 'v', b: number, kvh: number, start: number, count: number) => {
    const r = inputRows(task.job, task.spec, which, b, kvh, start, count);
    const key = `${store.location}|${rangeKey(r)}`;
    if (cache!.has(key)) counts.hits++;
    else {
      counts.misses++;
      counts.bytes += r.length;
    }
    return cache!.get(key, async () => bytesToF32(await store.read(r.name, r.offset, r.length)));
  };
  return async (b, kvh, start, count) => {
    const [k, v] = await Promise.all([fetch('k', b, kvh, start, count), fetch('v', b, kvh, start, count)]);
    return { k, v };
  };
}

/**
 * This thread's kept buffers for packing split tiles' partials (fs store only; buffer-pool.ts): a
 * task packs its part or two, and two tasks' writes may be in flight; parts up to 4 MiB are kept.
 */
const packPool = new BufferPool(4, 1 << 20);

/** Per-thread buffers a direct source reads into, kept across tasks (fresh memory costs page faults). */
const scratch = { q: new Float32Array(0), k: new Float32Array(0), v: new Float32Array(0) };

/**
 * Blocks read on demand straight from the fs store's files into this thread's reused buffers,
 * exactly as the local engine reads its inputs: no cache, no fresh memory per block (the page
 * cache holds the files). A block is valid until the next read of the same tensor, which is
 * how computeQBlock and the tile loop below use them (one tile at a time).
 */
function directSource(task: TileTask, store: FsBlobStore, counts: ReadCounters): BlockSource & { close(): void } {
  const { job, spec } = task;
  const readers = {
    q: store.openReader(blobNames.input(job, 'q')),
    k: store.openReader(blobNames.input(job, 'k')),
    // An LSE-only pass has no V blob (and reads none): K stands in for the never-called values().
    v: store.openReader(blobNames.input(job, task.outputs === 'lse' ? 'k' : 'v')),
  };
  const read = (which: 'q' | 'k' | 'v') => (b: number, head: number, start: number, count: number) => {
    const range = inputRows(job, spec, which, b, head, start, count);
    if (scratch[which].byteLength < range.length) scratch[which] = new Float32Array(range.length / 4);
    const block = scratch[which].subarray(0, range.length / 4);
    const t0 = performance.now();
    readers[which].readInto(range.offset, f32Bytes(block));
    counts.readMs += performance.now() - t0;
    counts.bytes += range.length;
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
    return { bytes: 0, hits: 0, misses: 0, readMs: 0, stallMs: 0, computeMs: 0 };
  }
  cache ??= new BlockCache(task.cacheBytes);
  // This task's own counts: several tasks are in a thread at once (one computing, the next ones reading).
  const counts: ReadCounters = { bytes: 0, hits: 0, misses: 0, readMs: 0, stallMs: 0, computeMs: 0 };
  const store = storeFor(task);
  const kernel = await threadKernel(task.backend, task.kernelOptions);
  // fs: direct reads from the page cache; elsewhere (Redis, S3) every block once, through the cache,
  // fetched from the moment the task arrives: a task that waits behind the one computing reads meanwhile.
  const direct = store instanceof FsBlobStore ? directSource(task, store, counts) : undefined;
  // Reads go in arrival order too: the next task to compute gets the store's bandwidth first.
  const earlierReads = reading;
  const sourcing = direct ? undefined : earlierReads.then(() => prefetch(task, store, counts));
  sourcing?.catch(() => {}); // awaited below, after the earlier task
  if (sourcing)
    reading = sourcing.then(
      () => {},
      () => {},
    );
  const { job, spec } = task;
  const writes: Promise<void>[] = [];
  // Writes overlap the next q-block's compute; a failure surfaces at the end (Promise.all below).
  const track = (write: Promise<void>) => {
    write.catch(() => {});
    writes.push(write);
  };
  const throttle = (tiles: number) => (task.throttleMs > 0 ? sleep(task.throttleMs * tiles) : undefined);
  // Tasks compute one at a time, in arrival order; the next tasks' reads overlap this one's compute.
  const earlier = computing;
  let done!: () => void;
  computing = new Promise<void>((resolve) => (done = resolve));
  await earlier;
  try {
    // What the kernel waits for here is the part of the reads the earlier task's compute did not hide.
    const t0 = performance.now();
    const source = direct ?? (await sourcing!);
    const t1 = performance.now();
    counts.stallMs += t1 - t0;
    const linear = spec.linear ? linearStates(job, spec, task.blockK) : undefined;
    const read = linear ? (direct ? sourceReader(direct) : stateReader(task, store, counts)) : undefined;
    const rows = new OutputRuns(job, spec, (name, offset, data) => track(store.write(name, offset, data)));
    for (const block of task.blocks) {
      await throttle(block.tiles.length);
      const merged = linear
        ? await computeLinearQBlock(spec, block, source, linear, read!)
        : await computeQBlock(kernel, spec, block, source, undefined, undefined, task.outputs);
      rows.add(block, merged);
    }
    rows.flush();
    const partials = await computeTiles(
      kernel,
      spec,
      task.tiles.map(({ tile }) => tile),
      source,
      () => throttle(1),
      task.outputs,
    );
    // One blob per run of tiles: each tile's partial over the q-block's rows (widened), back to back (blob-layout.ts).
    // On the fs store (written synchronously, nothing kept once putMany settles) they are packed
    // into this thread's kept buffers, given back when the write has settled (buffer-pool.ts).
    const pool = store instanceof FsBlobStore ? packPool : undefined;
    let at = 0;
    const packed = splitRuns(task.tiles).map((run) => {
      const results = partials.slice(at, at + run.length).map((p) => widenPartial(p));
      at += run.length;
      return {
        name: blobNames.partial(job, run[0]!.qi, run[0]!.tile.kBlock),
        floats: packPartials(results, pool?.take(packedLength(results))),
      };
    });
    if (packed.length > 0) {
      const put = store.putMany(packed.map(({ name, floats }) => ({ name, data: f32Bytes(floats) })));
      // A failed write keeps its buffers out of the pool (left to GC): nothing may still read them then.
      if (pool)
        put
          .then(() => {
            for (const { floats } of packed) pool.give(floats);
          })
          .catch(() => {});
      track(put);
    }
    counts.computeMs += performance.now() - t1;
  } finally {
    direct?.close();
    done();
  }
  await Promise.all(writes);
  // Fault tests: a window between a job's rows written and their q-blocks recorded by the worker.
  if (task.throttleMs > 0) await sleep(task.throttleMs);
  return counts;
}

/**
 * A task's reads: bytes fetched from the blob store (K/V block-cache misses and query rows, or
 * direct fs reads), K/V block-cache hits and misses (queries and fs reads bypass the cache),
 * milliseconds from a task's first read to its last block (readMs: overlaps the earlier task's
 * compute), of those the ones the kernel thread sat waiting after the earlier task finished
 * (stallMs: the reads' exposed cost), and milliseconds computing (kernels, merges, fs reads).
 * Workers add them up and log them (docs/scaling.md, "Data movement").
 */
export interface ReadCounters {
  bytes: number;
  hits: number;
  misses: number;
  readMs: number;
  stallMs: number;
  computeMs: number;
}
