import { emptyPartial, merge, type TilePartial } from '@longattn/attention';
import { jsTile } from '../js/js-kernel.ts';
import { hasNonFinite } from '../nonfinite.ts';
import { byIntervals, rowKeyRange, type TileJob, type TileKernel } from '../tile.ts';
import { loadGpuJs, type Gpu, type KernelClass } from './lib.ts';
import { createShapeKernels, destroyShapeKernels, type ShapeKernels } from './shape-kernels.ts';

/**
 * Elements per intermediate ([keys, rows] scores and p): keeps every flat index an exact float
 * in GLSL and each texture ≤ 64 MiB.
 */
const MAX_ELEMENTS = 1 << 24;
/** Largest chunk side in every mode (GL's is MAX_TEXTURE_SIZE, 16384 on Mesa; webasm/cpu have none). */
const MAX_SIDE = 16384;
/** Chunk rows and keys are padded up to multiples of this. */
const PAD = 64;
/** Shapes whose kernels stay built (a plan has few: full tiles and the ragged edges). */
const CACHED_SHAPES = 8;

export interface GpujsKernelConfig {
  gpu: Gpu;
  /** `gpujs:headlessgl`, … */
  backend: string;
  device: string;
  /** The gpu.js kernel class every kernel must end up on (not the cpu fallback). */
  expected: KernelClass;
  /** Largest texture side the device writes; tiles beyond it are split and merged. */
  maxSide: number;
  threads: number;
  onDispose?: () => void;
}

/**
 * A gpu.js tile kernel. A tile is split into chunks of ≤ min(maxSide, 16384) keys and
 * ≤ min(maxSide, 2^24 / keys) rows; key chunks are combined with `merge` (exact, in key order),
 * row chunks are concatenated. Runs are serialised: the kernels of a shape share their output textures.
 */
export class GpujsTileKernel implements TileKernel {
  readonly backend: string;
  readonly device: string;
  private readonly shapes = new Map<string, ShapeKernels>();
  private queue: Promise<unknown> = Promise.resolve();
  private last: ShapeKernels | undefined;
  /** Chunks that ran kernels so far (a tile over the texture limits runs several). */
  chunks = 0;

  constructor(private readonly config: GpujsKernelConfig) {
    this.backend = config.backend;
    this.device = config.device;
  }

  run(job: TileJob): Promise<TilePartial> {
    // A sparse pattern's mask runs as interval pieces (byIntervals): the shaders take one key interval per row.
    const result = this.queue.then(() => byIntervals(job, (piece) => this.runTile(piece)));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** gpu.js kernel classes that ran the last chunk, e.g. `HeadlessGLKernel` ×5 (tests check for fallbacks). */
  runsOn(): string[] {
    const k = this.last;
    return k ? [k.scores, k.rowMax, k.expP, k.rowSum, k.pv].map((s) => s.kernel.constructor.name) : [];
  }

  dispose(): void {
    for (const kernels of this.shapes.values()) destroyShapeKernels(kernels);
    this.shapes.clear();
    this.config.gpu.destroy();
    this.config.onDispose?.();
  }

  private async runTile(job: TileJob): Promise<TilePartial> {
    const { rows, keys, D } = job;
    // Shaders promise nothing about NaN and ±∞, and pv multiplies masked keys' 0 weights by v: a tile
    // holding NaN/±∞ (--allow-nonfinite only) runs on jsTile, exact by docs/nonfinite.md.
    if (
      hasNonFinite(job.q.subarray(0, rows * D)) ||
      hasNonFinite(job.k.subarray(0, keys * D)) ||
      hasNonFinite(job.v.subarray(0, keys * D))
    ) {
      return jsTile(job);
    }
    const side = Math.min(this.config.maxSide, MAX_SIDE);
    if (D > side) throw new Error(`${this.backend}: head dim ${D} exceeds the device's texture size ${side}`);
    const pad = Math.min(PAD, side);
    // Chunk sides (multiples of pad, so a padded chunk never outgrows them).
    const keyChunk = Math.min(roundUp(keys, pad), floorTo(side, pad));
    const rowChunk = Math.min(roundUp(rows, pad), floorTo(Math.min(side, MAX_ELEMENTS / keyChunk), pad));
    if (keyChunk >= keys && rowChunk >= rows) return this.runChunk(job, pad);
    const o = new Float32Array(rows * D);
    const lse = new Float32Array(rows);
    for (let r0 = 0; r0 < rows; r0 += rowChunk) {
      const rc = Math.min(rowChunk, rows - r0);
      const parts: TilePartial[] = [];
      for (let c0 = 0; c0 < keys; c0 += keyChunk) {
        const kc = Math.min(keyChunk, keys - c0);
        const chunk: TileJob = {
          ...job,
          rows: rc,
          keys: kc,
          qStart: job.qStart + r0,
          kStart: job.kStart + c0,
          q: job.q.subarray(r0 * D, (r0 + rc) * D),
          k: job.k.subarray(c0 * D, (c0 + kc) * D),
          v: job.v.subarray(c0 * D, (c0 + kc) * D),
        };
        parts.push(await this.runChunk(chunk, pad));
      }
      const part = parts.length === 1 ? parts[0]! : merge(parts);
      o.set(part.o, r0 * D);
      lse.set(part.lse, r0);
    }
    return { rows, D, kStart: job.kStart, o, lse };
  }

  /**
   * One chunk that fits the device: five kernels, intermediates stay on it; m, l and o come back.
   * Rows and keys are padded up to multiples of `pad` so ragged tiles share built kernels (GL
   * compiles five shaders per shape): padded keys lie outside every row's [lo, hi], padded rows
   * see no key, and neither changes a bit of the real rows' results.
   */
  private async runChunk(job: TileJob, pad: number): Promise<TilePartial> {
    const { rows, keys, D } = job;
    const R = roundUp(rows, pad);
    const K = roundUp(keys, pad);
    const lo = new Float32Array(R).fill(1); // padded rows: lo > hi, no key
    const hi = new Float32Array(R);
    let visible = false;
    for (let r = 0; r < rows; r++) {
      const [a, b] = rowKeyRange(job, r);
      lo[r] = a;
      hi[r] = b;
      if (b >= a) visible = true;
    }
    if (!visible) return emptyPartial(rows, D, job.kStart);
    const { input } = await loadGpuJs();
    const k = this.kernels(R, K, D);
    const q = input(padTo(job.q, R * D), [D, R]);
    const s = await k.scores(q, input(padTo(job.k, K * D), [D, K]), lo, hi, job.scale);
    const m = await k.rowMax(s, lo, hi);
    const p = await k.expP(s, m, lo, hi);
    const l = await k.rowSum(p);
    const out = await k.pv(p, input(padTo(job.v, K * D), [D, K]), l);
    this.last = k;
    this.chunks++;
    this.assertOnDevice(k);
    const mRow = await flat(m, R);
    const lRow = await flat(l, R);
    const o = (await flat(out, R * D)).slice(0, rows * D);
    const lse = new Float32Array(rows);
    // LSE in float64 from the device's float32 max and sum (GLSL log is less exact than Math.log).
    for (let r = 0; r < rows; r++) lse[r] = lRow[r]! > 0 ? mRow[r]! + Math.log(lRow[r]!) : -Infinity;
    return { rows, D, kStart: job.kStart, o, lse };
  }

  private kernels(rows: number, keys: number, D: number): ShapeKernels {
    const key = `${rows}x${keys}x${D}`;
    let kernels = this.shapes.get(key);
    if (kernels) {
      this.shapes.delete(key); // re-insert: the Map's order is the LRU order
    } else {
      kernels = createShapeKernels(this.config.gpu, rows, keys, D, this.config.threads, (name, reason) => {
        throw new Error(
          `${this.backend}: gpu.js could not build the ${name} kernel on ${this.device} and would fall back to its cpu kernel (${reason ?? 'no reason given'}); refusing`,
        );
      });
      if (this.shapes.size >= CACHED_SHAPES) {
        const [oldest, old] = this.shapes.entries().next().value as [string, ShapeKernels];
        this.shapes.delete(oldest);
        destroyShapeKernels(old);
      }
    }
    this.shapes.set(key, kernels);
    return kernels;
  }

  /** Never report a device we are not using: every kernel must be on the expected class. */
  private assertOnDevice(k: ShapeKernels): void {
    for (const shortcut of [k.scores, k.rowMax, k.expP, k.rowSum, k.pv]) {
      const kernel = shortcut.kernel;
      const onDevice: boolean = kernel instanceof this.config.expected;
      if (!onDevice) {
        const reason = kernel.fallbackReason ?? 'no reason given';
        throw new Error(
          `${this.backend}: a kernel runs on gpu.js ${kernel.constructor.name}, not ${this.config.expected.name} (${reason}); refusing`,
        );
      }
    }
  }
}

const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;
const floorTo = (n: number, m: number): number => Math.max(m, Math.floor(n / m) * m);

/** `a` itself when it has `length` elements, else a zero-padded copy. */
function padTo(a: Float32Array, length: number): Float32Array {
  if (a.length === length) return a;
  const out = new Float32Array(length);
  out.set(a);
  return out;
}

/** A kernel result (Float32Array, rows of them, or a texture / buffer handle) as one flat Float32Array. */
async function flat(value: unknown, length: number): Promise<Float32Array> {
  let v = value;
  if (v && typeof v === 'object' && 'toArray' in v && typeof v.toArray === 'function') v = await (v.toArray as () => unknown)();
  if (v instanceof Float32Array && v.length === length) return v;
  const out = new Float32Array(length);
  let at = 0;
  for (const row of v as Iterable<ArrayLike<number> | number>) {
    if (typeof row === 'number') out[at++] = row;
    else {
      out.set(row, at);
      at += row.length;
    }
  }
  if (at !== length) throw new Error(`gpujs: a kernel returned ${at} values, expected ${length}`);
  return out;
}
