import { emptyPartial, merge, type Partial } from '@longattn/attention';
import { rowKeyRange, type TileJob, type TileKernel } from '../tile.ts';
import { loadGpuJs, type Gpu, type KernelClass } from './lib.ts';
import { createShapeKernels, destroyShapeKernels, type ShapeKernels } from './shape-kernels.ts';

/**
 * Elements per intermediate ([keys, rows] scores and p): keeps every flat index an exact float
 * in GLSL and each texture ≤ 64 MiB.
 */
const MAX_ELEMENTS = 1 << 24;
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
 * A gpu.js tile kernel. A tile is split into chunks of ≤ maxSide keys and ≤ min(maxSide,
 * 2^24 / keys) rows; key chunks are combined with `merge` (exact, in key order), row chunks are
 * concatenated. Runs are serialised: the kernels of a shape share their output textures.
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

  run(job: TileJob): Promise<Partial> {
    const result = this.queue.then(() => this.runTile(job));
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

  private async runTile(job: TileJob): Promise<Partial> {
    const { rows, keys, D } = job;
    const { maxSide } = this.config;
    if (D > maxSide) throw new Error(`${this.backend}: head dim ${D} exceeds the device's texture size ${maxSide}`);
    const keyChunk = Math.min(keys, maxSide);
    const rowChunk = Math.max(1, Math.min(rows, maxSide, Math.floor(MAX_ELEMENTS / keyChunk)));
    if (keyChunk === keys && rowChunk === rows) return this.runChunk(job);
    const o = new Float32Array(rows * D);
    const lse = new Float32Array(rows);
    for (let r0 = 0; r0 < rows; r0 += rowChunk) {
      const rc = Math.min(rowChunk, rows - r0);
      const parts: Partial[] = [];
      for (let c0 = 0; c0 < keys; c0 += keyChunk) {
        const kc = Math.min(keyChunk, keys - c0);
        parts.push(
          await this.runChunk({
            ...job,
            rows: rc,
            keys: kc,
            qStart: job.qStart + r0,
            kStart: job.kStart + c0,
            q: job.q.subarray(r0 * D, (r0 + rc) * D),
            k: job.k.subarray(c0 * D, (c0 + kc) * D),
            v: job.v.subarray(c0 * D, (c0 + kc) * D),
          }),
        );
      }
      const part = parts.length === 1 ? parts[0]! : merge(parts);
      o.set(part.o, r0 * D);
      lse.set(part.lse, r0);
    }
    return { rows, D, kStart: job.kStart, o, lse };
  }

  /** One chunk that fits the device: five kernels, intermediates stay on it; m, l and o come back. */
  private async runChunk(job: TileJob): Promise<Partial> {
    const { rows, keys, D } = job;
    const lo = new Float32Array(rows);
    const hi = new Float32Array(rows);
    let visible = false;
    for (let r = 0; r < rows; r++) {
      const [a, b] = rowKeyRange(job, r);
      lo[r] = a;
      hi[r] = b;
      if (b >= a) visible = true;
    }
    if (!visible) return emptyPartial(rows, D, job.kStart);
    const { input } = await loadGpuJs();
    const k = this.kernels(rows, keys, D);
    const s = await k.scores(input(job.q, [D, rows]), input(job.k, [D, keys]), lo, hi, job.scale);
    const m = await k.rowMax(s, lo, hi);
    const p = await k.expP(s, m, lo, hi);
    const l = await k.rowSum(p);
    const out = await k.pv(p, input(job.v, [D, keys]), l);
    this.last = k;
    this.chunks++;
    this.assertOnDevice(k);
    const mRow = await flat(m, rows);
    const lRow = await flat(l, rows);
    const o = await flat(out, rows * D);
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
        throw new Error(`${this.backend}: gpu.js could not build the ${name} kernel on ${this.device} and would fall back to its cpu kernel (${reason ?? 'no reason given'}); refusing`);
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
        throw new Error(`${this.backend}: a kernel runs on gpu.js ${kernel.constructor.name}, not ${this.config.expected.name} (${reason}); refusing`);
      }
    }
  }
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
