import { headRows, lseShape, type AttentionSpec, type TilePartial, type QBlockPlan } from '@longattn/attention';
import { createTensorWriter, type OutDType, type TensorWriter } from '@longattn/tensor';

/**
 * A job's output files while it runs: O (Q's shape and layout, `outDtype`, default f32) and
 * optionally LSE ([B,H,Sq] with Q's leading dims dropped, always f32). Written q-block by q-block in any order; nothing appears at the final
 * paths until commit(), and abort() removes every trace.
 */
export class JobOutput {
  private readonly o: TensorWriter;
  private readonly lse: TensorWriter | undefined;

  constructor(
    private readonly spec: AttentionSpec,
    qShape: readonly number[],
    out: string,
    lse?: string,
    outDtype: OutDType = 'f32',
  ) {
    this.o = createTensorWriter(out, qShape, { name: 'out', argument: '--out', dtype: outDtype });
    try {
      this.lse = lse
        ? createTensorWriter(lse, lseShape(qShape.length, spec.B, spec.H, spec.Sq), { name: 'lse', argument: '--lse' })
        : undefined;
    } catch (error) {
      this.o.abort();
      throw error;
    }
  }

  /** Writes a merged q-block: partial.o [rows, D], partial.lse [rows]. */
  write(block: Pick<QBlockPlan, 'b' | 'h' | 'qStart' | 'rows'>, partial: TilePartial): void {
    const { layout, H, Sq, D } = this.spec;
    const rows = headRows(layout, block.b, block.h, H, Sq, D);
    this.o.writeRuns(rows.first + block.qStart * rows.stride, partial.o, rows.stride, D);
    this.lse?.writeRuns((block.b * H + block.h) * Sq + block.qStart, partial.lse, block.rows, block.rows);
  }

  commit(): void {
    this.o.commit();
    this.lse?.commit();
  }

  abort(): void {
    this.o.abort();
    this.lse?.abort();
  }
}

/** The same placement as JobOutput, into memory: out in Q's layout [B·H·Sq·D], lse [B·H·Sq]. */
export class JobOutputMemory {
  readonly out: Float32Array;
  readonly lse: Float32Array;

  constructor(private readonly spec: AttentionSpec) {
    this.out = new Float32Array(spec.B * spec.H * spec.Sq * spec.D);
    this.lse = new Float32Array(spec.B * spec.H * spec.Sq);
  }

  write(block: Pick<QBlockPlan, 'b' | 'h' | 'qStart' | 'rows'>, partial: TilePartial): void {
    const { layout, H, Sq, D } = this.spec;
    const rows = headRows(layout, block.b, block.h, H, Sq, D);
    for (let r = 0; r < block.rows; r++) {
      this.out.set(partial.o.subarray(r * D, (r + 1) * D), rows.first + (block.qStart + r) * rows.stride);
    }
    this.lse.set(partial.lse.subarray(0, block.rows), (block.b * H + block.h) * Sq + block.qStart);
  }
}

/** The LSE-only pass's output (runLocalLse): lse [B·H·Sq] in memory, placed as JobOutput places it; nothing to commit. */
export class LseOutput {
  readonly lse: Float32Array;

  constructor(private readonly spec: AttentionSpec) {
    this.lse = new Float32Array(spec.B * spec.H * spec.Sq);
  }

  /** A merged q-block's lse [rows] (its o is [rows, 0]). */
  write(block: Pick<QBlockPlan, 'b' | 'h' | 'qStart' | 'rows'>, partial: Pick<TilePartial, 'lse'>): void {
    this.lse.set(partial.lse.subarray(0, block.rows), (block.b * this.spec.H + block.h) * this.spec.Sq + block.qStart);
  }

  commit(): void {}

  abort(): void {}
}
