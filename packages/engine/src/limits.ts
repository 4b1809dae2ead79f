import { InputError, largestTileRows, plan, type AttentionSpec, type Plan } from '@longattn/attention';
import { checkBlocks } from './blocks.ts';

/**
 * Planning limits (docs/limits.md, "Planning and tiles"), read once from the environment:
 *   LONGATTN_MAX_TILE_AREA    rows × keys of one tile, default 4194304 (2^22)
 *   LONGATTN_MAX_MERGE_BYTES  one q-block's partials held for its merge, default 1073741824 (1 GiB)
 *   LONGATTN_MAX_JOB_TILES    tiles (and q-blocks) of one queue-engine job, default 4194304 (2^22)
 * Checked where a job is planned (runLocal, QueueEngine.submit: exit 2 naming the flags) and again
 * by every worker and reducer on the manifest it reads (the job fails; the process lives on).
 */
export interface PlanLimits {
  /**
   * min(blockQ, Sq) · min(blockK, Sk) at most this. A tile's kernel holds its scores and their
   * exponentials as [rows, keys] float32 (~40 bytes per element of the tile in all, measured: a
   * 16384×16384 tile took 10.8 GB), so 2^22 keeps a kernel thread near 170 MB — 8× the CPU
   * backends' default 256×2048 tile, 4× gpujs's 256×4096.
   */
  maxTileArea: number;
  /**
   * A q-block's partials are all held until its merge (merge() takes them together, so the bits
   * never depend on arrival order): ⌈Sk / blockK⌉ · (rows·(D+1)·4 + 512) bytes at most — the
   * float32 o and lse of each tile plus ~512 bytes of objects per tile (measured: 10^5 tiles of
   * 1×1 held ~50 MB). Too small a blockK for a long document (blockK = 1 on 10M keys: ~5 GB)
   * would otherwise exhaust a thread's heap.
   */
  maxMergeBytes: number;
  /**
   * Queue engine: plan.tileCount and plan.qBlockCount at most this. The submitter batches every
   * tile into BullMQ jobs (its time and the flow's size grow with the tiles), and a q-block split
   * across jobs stores one partial blob per tile (measured: 3.8M tiles, every q-block split, batched
   * in 1.7 s within 144 MB). The local engine has no such limit: it plans
   * lazily and runs any tile count in bounded memory, with progress.
   */
  maxJobTiles: number;
}

function envLimit(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new InputError(name, `expected an integer ≥ 1, got "${text}"`);
  return value;
}

let fromEnv: PlanLimits | undefined;

/** The limits this process runs with (environment read on first use), overridden field by field by `given`. */
export function planLimits(given: Partial<PlanLimits> = {}): PlanLimits {
  fromEnv ??= {
    maxTileArea: envLimit('LONGATTN_MAX_TILE_AREA', 1 << 22),
    maxMergeBytes: envLimit('LONGATTN_MAX_MERGE_BYTES', 2 ** 30),
    maxJobTiles: envLimit('LONGATTN_MAX_JOB_TILES', 1 << 22),
  };
  return { ...fromEnv, ...given };
}

/** InputError (`--block-q`/`--block-k`) when a tile of this job would exceed maxTileArea. */
export function checkTileArea(
  spec: Pick<AttentionSpec, 'Sq' | 'Sk' | 'pattern' | 'linear'>,
  blocks: { blockQ: number; blockK: number },
  limits: PlanLimits,
): void {
  const rows = largestTileRows(spec, blocks.blockQ); // under a stride: a band sub-group's or a class's rows (stride-tiles.ts)
  const keys = Math.min(blocks.blockK, spec.Sk);
  if (rows * keys > limits.maxTileArea) {
    throw new InputError(
      rows >= keys ? '--block-q' : '--block-k',
      `tiles of ${rows}×${keys} exceed the limit of ${limits.maxTileArea} rows×keys per tile (LONGATTN_MAX_TILE_AREA); use smaller --block-q/--block-k`,
    );
  }
}

/** Bytes a q-block's merge may hold at most (see PlanLimits.maxMergeBytes). */
export function mergeBytes(spec: Pick<AttentionSpec, 'Sq' | 'Sk' | 'D'>, blocks: { blockQ: number; blockK: number }): number {
  return Math.ceil(spec.Sk / blocks.blockK) * (Math.min(blocks.blockQ, spec.Sq) * (spec.D + 1) * 4 + 512);
}

/** InputError (`--block-k`) when a q-block's partials would exceed maxMergeBytes. */
export function checkMergeBytes(
  spec: Pick<AttentionSpec, 'Sq' | 'Sk' | 'D'>,
  blocks: { blockQ: number; blockK: number },
  limits: PlanLimits,
): void {
  const bytes = mergeBytes(spec, blocks);
  if (bytes > limits.maxMergeBytes) {
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
    throw new InputError(
      '--block-k',
      `${Math.ceil(spec.Sk / blocks.blockK)} key blocks per q-block would hold ${mib(bytes)} of partials for one merge, over the limit of ${mib(limits.maxMergeBytes)} (LONGATTN_MAX_MERGE_BYTES); use a larger --block-k`,
    );
  }
}

/** InputError (`--block-q`/`--block-k`) when a queue job would hold more than maxJobTiles tiles or q-blocks. */
export function checkJobTiles(plan: Pick<Plan, 'tileCount' | 'qBlockCount'>, limits: PlanLimits): void {
  const worst = Math.max(plan.tileCount, plan.qBlockCount);
  if (worst > limits.maxJobTiles) {
    const what = plan.tileCount >= plan.qBlockCount ? `${plan.tileCount} tiles` : `${plan.qBlockCount} q-blocks`;
    throw new InputError(
      plan.tileCount >= plan.qBlockCount ? '--block-k' : '--block-q',
      `${what} exceed the queue engine's limit of ${limits.maxJobTiles} per job (LONGATTN_MAX_JOB_TILES); use larger --block-q/--block-k or --engine local`,
    );
  }
}

/**
 * The plan of a job within the limits, checked before anything grows with the job: block sizes
 * (integers in 1…2^20, tile area, merge memory), then for the queue engine the q-block count (arithmetic,
 * before planning), then its tiles (counted lazily, none generated). InputError naming the flag.
 */
export function plannedWithinLimits(
  spec: AttentionSpec,
  blocks: { blockQ: number; blockK: number },
  limits: PlanLimits,
  engine: 'local' | 'queue',
): Plan {
  checkBlocks(blocks);
  checkTileArea(spec, blocks, limits);
  if (!spec.linear) checkMergeBytes(spec, blocks, limits); // a linear q-block holds no partials, only its rows' sums
  if (engine === 'queue') checkJobTiles({ tileCount: 0, qBlockCount: spec.B * spec.H * Math.ceil(spec.Sq / blocks.blockQ) }, limits);
  const planned = plan(spec, blocks);
  if (engine === 'queue') checkJobTiles(planned, limits);
  return planned;
}
