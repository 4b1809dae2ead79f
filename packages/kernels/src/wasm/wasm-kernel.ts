import { emptyPartial, type TilePartial } from '@longattn/attention';
import { byIntervals, rowKeyRange, type Backend, type LseTileJob, type TileJob, type TileKernel } from '../tile.ts';
import { webAssembly, type WasmMemory, type WasmModule } from './api.ts';
import { tileLayout } from './layout.ts';
import { loadTileModule, simdSupported } from './load.ts';

interface TileExports {
  memory: WasmMemory;
  heapBase(): number;
  tile(...args: number[]): void;
}

const PAGE = 65536;
const DEVICE = 'cpu (WASM SIMD)';

/**
 * The AssemblyScript SIMD tile (assembly/tile.ts) in its own WebAssembly instance and memory,
 * grown to the largest tile seen. One thread per kernel; instances share nothing.
 */
export class WasmTileKernel implements TileKernel {
  readonly backend = 'wasm';
  readonly device = DEVICE;
  readonly #exports: TileExports;
  readonly #base: number;

  constructor(module: WasmModule) {
    this.#exports = new webAssembly!.Instance(module, {}).exports as TileExports;
    this.#base = this.#exports.heapBase();
  }

  /** A sparse pattern's mask (job.visible) runs as interval pieces (byIntervals): the SIMD tile takes one key interval per row. */
  run(job: TileJob): TilePartial | Promise<TilePartial> {
    return job.visible ? byIntervals(job, (piece) => this.runIntervals(piece)) : this.runIntervals(job);
  }

  /** The V-free tile: the SIMD tile with values = false (same max, Σp and lse bits; no P·V, no o). */
  async lse(job: LseTileJob): Promise<Float32Array> {
    const run = (piece: TileJob) => this.runIntervals(piece, false);
    const none = new Float32Array(0);
    return (await (job.visible ? byIntervals({ ...job, v: none }, run) : run({ ...job, v: none }))).lse;
  }

  private runIntervals(job: TileJob, values = true): TilePartial {
    const { rows, keys, D, q, k, v } = job;
    if (q.length < rows * D || k.length < keys * D || (values && v.length < keys * D)) {
      throw new RangeError(`wasm tile: q/k/v hold ${q.length}/${k.length}/${v.length} values, need ${rows * D}/${keys * D}/${keys * D}`);
    }
    if (rows === 0) return emptyPartial(0, values ? D : 0, job.kStart);
    const at = tileLayout(this.#base, rows, keys, D);
    const memory = this.#exports.memory;
    if (at.end > memory.buffer.byteLength) memory.grow(Math.ceil((at.end - memory.buffer.byteLength) / PAGE));
    const f32 = new Float32Array(memory.buffer);
    const i32 = new Int32Array(memory.buffer);
    f32.set(q.subarray(0, rows * D), at.q / 4);
    f32.set(k.subarray(0, keys * D), at.k / 4);
    if (values) f32.set(v.subarray(0, keys * D), at.v / 4);
    const padded = Math.ceil(rows / 8) * 8;
    for (let r = 0; r < padded; r++) {
      const [lo, hi] = r < rows ? rowKeyRange(job, r) : [0, -1];
      i32[at.lo / 4 + r] = Math.min(lo, keys); // clamped into int32; hi < lo still means empty
      i32[at.hi / 4 + r] = Math.max(hi, -1);
    }
    this.#exports.tile(
      at.q,
      at.qp,
      at.k,
      at.kp,
      at.v,
      at.lo,
      at.hi,
      at.sc,
      at.acc,
      at.st,
      at.o,
      at.lse,
      rows,
      keys,
      D,
      job.scale,
      values ? 1 : 0,
    );
    const o = values ? f32.slice(at.o / 4, at.o / 4 + rows * D) : new Float32Array(0);
    const lse = f32.slice(at.lse / 4, at.lse / 4 + rows);
    return { rows, D: values ? D : 0, kStart: job.kStart, o, lse };
  }
}

export const wasmBackend: Backend = {
  name: 'wasm',
  summary: 'AssemblyScript WASM SIMD, one thread per kernel (any head dim)',
  defaultBlocks: { blockQ: 256, blockK: 2048 },
  async probe() {
    if (!simdSupported()) return 'WebAssembly SIMD is not supported by this runtime';
    try {
      await loadTileModule();
      return null;
    } catch (error) {
      return `the wasm tile could not be built or loaded: ${(error as Error).message.split('\n')[0]}`;
    }
  },
  async describe() {
    return DEVICE;
  },
  async create() {
    return new WasmTileKernel(await loadTileModule());
  },
};
