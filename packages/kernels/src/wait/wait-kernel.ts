import { emptyPartial, type TilePartial } from '@longattn/attention';
import { rowKeyRange, type Backend, type TileJob, type TileKernel } from '../tile.ts';

/** The environment switch without which the wait kernel refuses to run (tests and benchmarks set it). */
export const TEST_KERNELS_ENV = 'LONGATTN_TEST_KERNELS';

/** Its modelled speed when `wait` is given no mode: `wait:G` waits FLOPs / (G·1e9) seconds per tile. */
export const WAIT_DEFAULT_GFLOPS = 25;

const enabled = () => (process.env[TEST_KERNELS_ENV] ?? '').split(',').includes('wait');

const refusal = `a test-only kernel (it waits instead of computing: its outputs are not attention); set ${TEST_KERNELS_ENV}=wait to use it`;

/** `wait:G` → G GFLOP/s (a finite number > 0), else a one-line reason. */
function gflopsOf(mode: string | undefined): number | string {
  if (mode === undefined) return WAIT_DEFAULT_GFLOPS;
  const g = Number(mode);
  return Number.isFinite(g) && g > 0 && /^[0-9.e+]+$/i.test(mode)
    ? g
    : `wait:${mode}: the mode is the modelled speed in GFLOP/s, a number > 0`;
}

/**
 * A tile's FLOPs as the planner counts them (packages/attention/src/planner.ts): 4 · visible (row,
 * key) pairs · D, in one pass over the rows (none for a full tile). `seen`, when given ([rows]),
 * gets 0 at each row that sees a key (the wait kernel's lse).
 */
export function tileFlops(job: TileJob, seen?: Float32Array): number {
  let pairs = 0;
  if (job.full) {
    pairs = job.rows * job.keys;
    seen?.fill(0);
  } else
    for (let r = 0; r < job.rows; r++) {
      let row = 0;
      if (job.visible) for (let c = r * job.keys, end = c + job.keys; c < end; c++) row += job.visible[c]!;
      else {
        const [lo, hi] = rowKeyRange(job, r);
        row = Math.max(0, hi - lo + 1);
      }
      pairs += row;
      if (seen && row > 0) seen[r] = 0;
    }
  return 4 * pairs * job.D;
}

/**
 * A kernel that computes nothing: each tile resolves after its modelled compute time, FLOPs /
 * (G GFLOP/s), on a timer, so it costs no CPU and one machine can host many workers to measure
 * the queue's control plane (scripts/bench-cluster.ts, docs/scaling.md). Deadlines accumulate
 * (a tile is due its time after the previous tile's due time, or now if that has passed), so
 * timer granularity does not distort jobs of many small tiles. Outputs: o = 0, lse = 0 for rows
 * that see a key (-Infinity for rows that see none) — NOT attention; the kernel refuses to run
 * unless LONGATTN_TEST_KERNELS includes `wait`, and auto-selection never picks it.
 */
/** How many masked tiles' shapes a wait kernel keeps the partial of (a job's few distinct diagonal offsets). */
const MASKED_KEPT = 8;

class WaitKernel implements TileKernel {
  readonly backend: string;
  readonly device: string;
  private due = 0;
  /**
   * The partial of a full tile of the last full tile's shape (o = 0, lse = 0 on every row), which
   * every full tile of that shape returns: callers only read a kernel's partial (merge, packing),
   * and a fresh one per tile (96 KB at the bench's 8192 rows, D = 2: zeroed, then filled twice)
   * was ~20–60 µs of CPU per tile, 8 tiles per job at the bench's 64-worker shape (docs/scaling.md).
   */
  private full: TilePartial | undefined;
  /**
   * Masked tiles' partials and FLOPs, shared the same way, by the tile's geometry relative to its
   * rule: without `visible` or `ranges`, row r of a tile sees keys [qStart + r + diag − left −
   * kStart, … + right] clamped to its keys, which depends on qStart − kStart, not on where the tile
   * is. A causal job's diagonal tiles then cost one pass over their rows once, not a fresh partial
   * and a pass each (one per q-block at the bench's shape). The MASKED_KEPT shapes used last.
   */
  private readonly masked = new Map<string, { partial: TilePartial; flops: number }>();

  constructor(private readonly gflops: number) {
    this.backend = `wait:${gflops}`;
    this.device = `none (test-only: waits FLOPs / ${gflops} GFLOP/s, computes nothing)`;
  }

  async run(job: TileJob): Promise<TilePartial> {
    const now = performance.now();
    let out: TilePartial;
    let flops: number;
    // Its own CPU is the benchmark's noise (64 workers share a few cores): one pass per masked tile, none per full one.
    if (job.full) {
      if (this.full?.rows !== job.rows || this.full.D !== job.D)
        this.full = { ...emptyPartial(job.rows, job.D, 0), lse: new Float32Array(job.rows) };
      out = { ...this.full, kStart: job.kStart };
      flops = tileFlops(job);
    } else if (job.visible || job.ranges) {
      out = emptyPartial(job.rows, job.D, job.kStart);
      flops = tileFlops(job, out.lse);
    } else {
      const { diag, left, right } = job.rule;
      const key = `${job.rows},${job.keys},${job.D},${job.qStart - job.kStart},${diag},${left},${right}`;
      let kept = this.masked.get(key);
      if (!kept) {
        const partial = emptyPartial(job.rows, job.D, job.kStart);
        kept = { partial, flops: tileFlops(job, partial.lse) };
        if (this.masked.size >= MASKED_KEPT) this.masked.delete(this.masked.keys().next().value!);
        this.masked.set(key, kept);
      }
      out = { ...kept.partial, kStart: job.kStart };
      flops = kept.flops;
    }
    this.due = Math.max(this.due, now) + flops / (this.gflops * 1e6);
    if (this.due > now) await new Promise((resolve) => setTimeout(resolve, this.due - now));
    return out;
  }
}

export const waitBackend: Backend = {
  name: 'wait',
  summary: 'test-only: waits a tile’s modelled compute time (FLOPs / G GFLOP/s, `wait:G`) and computes nothing',
  defaultBlocks: { blockQ: 256, blockK: 2048 },
  testOnly: true,
  cpuFree: true,
  async probe(options = {}) {
    if (!enabled()) return refusal;
    const g = gflopsOf(options.mode);
    return typeof g === 'string' ? g : null;
  },
  async describe(options = {}) {
    return `none (test-only: waits FLOPs / ${String(gflopsOf(options.mode))} GFLOP/s, computes nothing)`;
  },
  async create(options = {}) {
    if (!enabled()) throw new Error(`wait: ${refusal}`);
    const g = gflopsOf(options.mode);
    if (typeof g === 'string') throw new Error(g);
    return new WaitKernel(g);
  },
};
