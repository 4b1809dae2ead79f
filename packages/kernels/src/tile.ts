import { emptyPartial, keyHigh, keyLow, merge, type MaskRule, type TilePartial } from '@longattn/attention';

/**
 * One tile of work for a kernel: rows [qStart, qStart+rows) of one query head against keys
 * [kStart, kStart+keys) of its kv head.
 *   q: [rows, D] float32, k and v: [keys, D] float32, all contiguous (row-major).
 * Row r (absolute i = qStart + r) sees key c (absolute j = kStart + c) iff
 *   keyLow(rule, i) ≤ j ≤ keyHigh(rule, i)   (@longattn/attention's mask, docs/math.md).
 * `full` promises that the mask hides nothing inside the tile (kernels may skip masking).
 * Under a sparse pattern (docs/math.md, "Patterns") a partial tile carries `visible` instead: row r
 * sees key c iff visible[r·keys + c] = 1 (the rule above does not apply then). `ranges` gives each
 * row's keys as an explicit interval instead of the rule (byIntervals' pieces).
 */
export interface TileJob {
  rows: number;
  keys: number;
  D: number;
  scale: number;
  qStart: number;
  kStart: number;
  rule: MaskRule;
  full: boolean;
  /** [rows, keys] 1 = visible, 0 = masked: a partial tile under a sparse pattern. */
  visible?: Uint8Array;
  /** [rows, 2] each row's visible keys [lo, hi] relative to kStart (empty: hi < lo), overriding `rule`. */
  ranges?: Int32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /**
   * q, k and v were checked finite where they entered the job (no --allow-nonfinite): a kernel may
   * skip its own non-finite scan (docs/nonfinite.md). Absent: scan as before.
   */
  finite?: boolean;
  /**
   * The plan's only tile for its rows (Tile.sole): its o is their output as it is. A kernel may
   * form o by a fused path (ort: docs/math.md, "Sole tiles") whose bits must not depend on `oOnly`.
   */
  sole?: boolean;
  /**
   * With `sole`: the caller needs o alone (no LSE is written or merged), so the kernel may skip
   * the LSE and return `lse` as zeros — never merged with another partial, never written.
   */
  oOnly?: boolean;
}

/**
 * A tile of an LSE-only pass (inspect's first pass, docs/math.md "Attention patterns"): a TileJob
 * without values — scores, row max and log-sum-exp only, no P·V and no [rows, D] output.
 */
export type LseTileJob = Omit<TileJob, 'v'>;

/**
 * A band tile (docs/math.md, "Band tiles"; @longattn/attention's band-tiles.ts) as a kernel sees
 * it: B sub-blocks of r rows, sub-block b against its own K keys; row x of every sub-block sees
 * columns [0, shared) and [shared + x, shared + x + width) (K = shared + r − 1 + width), no other.
 *   q: [B·r, D] (sub-block b's rows at b·r), k and v: [B, K, D], float32, contiguous.
 * Every row sees ≥ 1 key. `finite` as TileJob's.
 */
export interface BandJob {
  B: number;
  r: number;
  keys: number;
  shared: number;
  width: number;
  D: number;
  scale: number;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  finite?: boolean;
  /** The caller needs o alone (a sole band tile, no LSE written: TileJob's `oOnly`): lse may come back as zeros. */
  oOnly?: boolean;
}

/** A band call's result: o [B·r, D] normalised and lse [B·r] (zeros when the job was `oOnly`). */
export interface BandResult {
  o: Float32Array;
  lse: Float32Array;
}

/** A ready kernel of one backend: computes tiles into partials (o normalised, lse; kStart = job.kStart). */
export interface TileKernel {
  /** Registry name of the backend, e.g. `js`, `gpujs:headlessgl`. */
  readonly backend: string;
  /** What actually runs it, e.g. `cpu (portable JS)`, `NVIDIA H200 (GL)`. Never a device it is not using. */
  readonly device: string;
  run(job: TileJob): TilePartial | Promise<TilePartial>;
  /**
   * The V-free tile: lse [rows] of the tile's visible keys alone (natural log, −∞ for a row that
   * sees none), exactly as `run` would give it, without reading V or forming O. Optional: a
   * kernel without it runs through tileLse's default (the full tile with V = K, its O dropped).
   */
  lse?(job: LseTileJob): Float32Array | Promise<Float32Array>;
  /**
   * Optional band path: o [B·r, D] normalised and lse [B·r] of a band tile in one call, or null to
   * have the tile run as its parts (e.g. non-finite inputs). Kernels without it run every band
   * tile's parts (the tiles planned without bands). kStart of the partial is 0: the caller sets it.
   */
  band?(job: BandJob): Promise<BandResult | null>;
  /** band's V-free tile: lse [B·r] with the same bits band gives, or null as band. */
  bandLse?(job: Omit<BandJob, 'v'>): Promise<Float32Array | null>;
  dispose?(): void | Promise<void>;
}

export interface KernelOptions {
  /** Threads this kernel may use inside one tile (ort's intra-op threads). Default 1. */
  threads?: number;
  /** Backend mode, e.g. gpujs's `headlessgl`, `webasm`, `cpu`, `webgpu`. */
  mode?: string;
}

export interface Backend {
  /** Registry name; `--backend NAME[:MODE]`. */
  readonly name: string;
  readonly summary: string;
  /** Tile sizes this backend runs best with (overridable with --block-q / --block-k). */
  readonly defaultBlocks: { blockQ: number; blockK: number };
  /**
   * Modes every CI run must cover: the conformance suite runs each one, and fails (never skips)
   * when one cannot run. Default: the backend's default mode only.
   */
  readonly testedModes?: readonly string[];
  /**
   * `main`: kernels must live on the process's main thread (e.g. the gl addon is not
   * context-aware and cannot load in worker threads); the local engine then runs tiles in-process,
   * one at a time, and the device does the parallel work. Default `pool`.
   */
  readonly threading?: 'pool' | 'main';
  /**
   * Test-only (the wait kernel): never listed by listBackends, so auto-selection, the conformance
   * suite and `bench` never see it; reachable only by name, and its probe refuses unless enabled.
   */
  readonly testOnly?: boolean;
  /**
   * Its tiles use no CPU (the wait kernel waits on a timer): a queue worker runs them on its own
   * event loop instead of starting a kernel thread pool, so one machine can host many workers.
   */
  readonly cpuFree?: boolean;
  /** True when this backend can run on an accelerator (auto-selection asks probeHardware). */
  readonly accelerated?: boolean;
  /**
   * Accelerated backends: the options that reach real GPU hardware here (not a software
   * renderer such as llvmpipe), or null when there is none. Auto-selection uses it.
   */
  probeHardware?(): Promise<{ options: KernelOptions; device: string } | null>;
  /** null when the backend can run here (in this mode), else a one-line reason why not. */
  probe(options?: KernelOptions): Promise<string | null>;
  /** The device a kernel created with these options will run on (same text as TileKernel.device). */
  describe?(options?: KernelOptions): Promise<string>;
  create(options?: KernelOptions): Promise<TileKernel>;
}

/**
 * One tile's LSE [rows] on any kernel: its own V-free tile (`kernel.lse`: ort, js, wasm),
 * else the documented default for the others (gpujs, webgpu): the full tile with
 * V = K, whose LSE is the same exact one `run` computes (only the P·V work is wasted).
 */
export async function tileLse(kernel: TileKernel, job: LseTileJob): Promise<Float32Array> {
  if (kernel.lse) return kernel.lse(job);
  return (await kernel.run({ ...job, v: job.k })).lse;
}

/** The o of an LSE-only partial: [rows, 0]. */
const NO_VALUES = new Float32Array(0);

/**
 * A tile's LSE-only partial (inspect's first pass): rows × 0 values, kStart the job's, lse from
 * tileLse — what the merge takes in place of a full tile's partial when no O is wanted.
 */
export async function tileLsePartial(kernel: TileKernel, job: LseTileJob): Promise<TilePartial> {
  return { rows: job.rows, D: 0, kStart: job.kStart, o: NO_VALUES, lse: await tileLse(kernel, job) };
}

/** Per-row visible key interval inside the tile, relative to kStart: [lo, hi], empty when hi < lo. */
export function rowKeyRange(
  job: Pick<TileJob, 'qStart' | 'kStart' | 'keys' | 'rule' | 'full' | 'ranges' | 'visible'>,
  r: number,
): [number, number] {
  if (job.full || job.visible) return [0, job.keys - 1]; // with `visible`, that mask decides within the tile
  if (job.ranges) return [job.ranges[2 * r]!, job.ranges[2 * r + 1]!];
  const i = job.qStart + r;
  return [Math.max(0, keyLow(job.rule, i) - job.kStart), Math.min(job.keys - 1, keyHigh(job.rule, i) - job.kStart)];
}

/**
 * A tile with an explicit mask (`visible`) run on a kernel that only takes one key interval per
 * row: piece p gives each row its p-th run of visible keys (rows with fewer runs: none), narrowed
 * to the keys its rows use; the pieces' partials merge exactly (each key of a row in one piece),
 * in piece order, so the bits never depend on anything but the tile. Pieces ≈ the most runs in a
 * row: few for sinks, globals, windows and block masks; keys/stride for a stride.
 */
export async function byIntervals(job: TileJob, run: (piece: TileJob) => TilePartial | Promise<TilePartial>): Promise<TilePartial> {
  const { rows, keys, D, visible } = job;
  if (!visible) return run(job);
  const runs: number[][] = [];
  let pieces = 0;
  for (let r = 0; r < rows; r++) {
    const row: number[] = [];
    for (let c = 0, base = r * keys; c < keys; c++) {
      if (!visible[base + c]) continue;
      const start = c;
      while (c + 1 < keys && visible[base + c + 1]) c++;
      row.push(start, c);
    }
    runs.push(row);
    pieces = Math.max(pieces, row.length / 2);
  }
  if (pieces === 0) return emptyPartial(rows, D, job.kStart);
  const partials: TilePartial[] = [];
  for (let p = 0; p < pieces; p++) {
    let from = keys;
    let to = -1;
    for (const row of runs) {
      if (row.length <= 2 * p) continue;
      from = Math.min(from, row[2 * p]!);
      to = Math.max(to, row[2 * p + 1]!);
    }
    const ranges = new Int32Array(2 * rows);
    for (let r = 0; r < rows; r++) {
      const row = runs[r]!;
      ranges[2 * r] = row.length > 2 * p ? row[2 * p]! - from : 0;
      ranges[2 * r + 1] = row.length > 2 * p ? row[2 * p + 1]! - from : -1;
    }
    const { visible: _, ...rest } = job;
    partials.push(
      await run({
        ...rest,
        kStart: job.kStart + from,
        keys: to - from + 1,
        full: false,
        ranges,
        k: job.k.subarray(from * D, (to + 1) * D),
        v: job.v.subarray(from * D, (to + 1) * D),
      }),
    );
  }
  return { ...merge(partials), kStart: job.kStart };
}
