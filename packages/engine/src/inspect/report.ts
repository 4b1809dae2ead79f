import type { AttentionSpec } from '@longattn/attention';
import type { ChunkRef, ChunkResult, TopRow } from './chunk.ts';
import { CHUNK_ROWS, cellOf, type InspectSettings } from './settings.ts';

/** One head's statistics (docs/contracts.md): averages over the `rows` rows that see any key; null when none does. */
export interface HeadReport {
  b: number;
  h: number;
  rows: number;
  entropy: number | null;
  meanDistance: number | null;
  sinkShare: number | null;
  localShare: number | null;
  top: TopRow[];
}

/** The chunks of a job, in the one order they are folded: batch, head, rows. */
export function chunksOf(spec: AttentionSpec): ChunkRef[] {
  const chunks: ChunkRef[] = [];
  for (let b = 0; b < spec.B; b++)
    for (let h = 0; h < spec.H; h++)
      for (let rowStart = 0; rowStart < spec.Sq; rowStart += CHUNK_ROWS)
        chunks.push({ b, h, rowStart, rows: Math.min(CHUNK_ROWS, spec.Sq - rowStart) });
  return chunks;
}

/**
 * Folds chunk results into the report, strictly in chunk order (results that arrive early wait in
 * `pending`), so every float64 sum is formed in the same order whatever the thread or worker count.
 * - `received` [B·H·Sk] float64, `cells` [B·H·mapRows·mapCols] float64 sums (means: mapMeans).
 * - `weights` [B·H·(A:B rows)·Sk] float32.
 */
export class InspectFold {
  readonly heads: HeadReport[] = [];
  readonly received: Float64Array | undefined;
  readonly cells: Float64Array | undefined;
  readonly weights: Float32Array | undefined;
  /** The score tiles that ran (chunk.ts `scores`): `ort`, `js`, or both joined by `+`. */
  scores = '';
  private readonly sums: Float64Array;
  private readonly pending = new Map<number, ChunkResult>();
  private next = 0;

  constructor(
    private readonly spec: AttentionSpec,
    private readonly settings: InspectSettings,
    private readonly chunks: readonly ChunkRef[],
  ) {
    const heads = spec.B * spec.H;
    this.sums = new Float64Array(heads * 5);
    for (let b = 0; b < spec.B; b++)
      for (let h = 0; h < spec.H; h++)
        this.heads.push({ b, h, rows: 0, entropy: null, meanDistance: null, sinkShare: null, localShare: null, top: [] });
    this.received = settings.received ? new Float64Array(heads * spec.Sk) : undefined;
    this.cells = settings.mapRows ? new Float64Array(heads * settings.mapRows * settings.mapCols) : undefined;
    const tracked = settings.rowsTo - settings.rowsFrom;
    this.weights = settings.weights && tracked > 0 ? new Float32Array(heads * tracked * spec.Sk) : undefined;
  }

  /** Whether every chunk has been folded. */
  get complete(): boolean {
    return this.next === this.chunks.length;
  }

  /** Takes chunk `index`'s result; folds it and any that were waiting on it. */
  add(index: number, result: ChunkResult): void {
    this.pending.set(index, result);
    for (let r = this.pending.get(this.next); r; r = this.pending.get(this.next)) {
      this.pending.delete(this.next);
      this.fold(this.chunks[this.next]!, r);
      this.next++;
    }
    if (this.complete) this.finish();
  }

  private fold(chunk: ChunkRef, r: ChunkResult): void {
    const { spec, settings } = this;
    const head = chunk.b * spec.H + chunk.h;
    if (r.scores && !this.scores.split('+').includes(r.scores)) this.scores = this.scores ? `${this.scores}+${r.scores}` : r.scores;
    const s = this.sums;
    for (let i = 0; i < chunk.rows; i++) {
      if (Number.isNaN(r.entropy[i]!)) continue;
      s[head * 5] += 1;
      s[head * 5 + 1] += r.entropy[i]!;
      s[head * 5 + 2] += r.distance[i]!;
      s[head * 5 + 3] += r.sink[i]!;
      s[head * 5 + 4] += r.local[i]!;
    }
    if (this.received && r.received) {
      const at = head * spec.Sk;
      for (let j = 0; j < spec.Sk; j++) this.received[at + j] += r.received[j]!;
    }
    if (this.cells && r.cells) {
      const at = (head * settings.mapRows + r.cellRowStart) * settings.mapCols;
      for (let c = 0; c < r.cells.length; c++) this.cells[at + c] += r.cells[c]!;
    }
    this.heads[head]!.top.push(...r.top);
    if (this.weights && r.weights && r.top.length > 0) {
      const tracked = settings.rowsTo - settings.rowsFrom;
      const row = r.top[0]!.row - settings.rowsFrom;
      this.weights.set(r.weights, (head * tracked + row) * spec.Sk);
    }
  }

  private finish(): void {
    this.heads.forEach((head, i) => {
      const n = this.sums[i * 5]!;
      head.rows = n;
      if (n === 0) return;
      head.entropy = this.sums[i * 5 + 1]! / n;
      head.meanDistance = this.sums[i * 5 + 2]! / n;
      head.sinkShare = this.sums[i * 5 + 3]! / n;
      head.localShare = this.sums[i * 5 + 4]! / n;
    });
  }
}

/**
 * Mean p per map cell [B·H·mapRows·mapCols]: each cell's sum over the number of (query, key)
 * pairs in it, masked pairs counting as p = 0.
 */
export function mapMeans(spec: AttentionSpec, settings: InspectSettings, cells: Float64Array): Float64Array {
  const { mapRows, mapCols } = settings;
  const rowCount = new Float64Array(mapRows);
  for (let i = 0; i < spec.Sq; i++) rowCount[cellOf(i, spec.Sq, mapRows)] += 1;
  const colCount = new Float64Array(mapCols);
  for (let j = 0; j < spec.Sk; j++) colCount[cellOf(j, spec.Sk, mapCols)] += 1;
  const means = new Float64Array(cells.length);
  for (let c = 0; c < cells.length; c++) {
    const cell = c % (mapRows * mapCols);
    means[c] = cells[c]! / (rowCount[Math.floor(cell / mapCols)]! * colCount[cell % mapCols]!);
  }
  return means;
}
