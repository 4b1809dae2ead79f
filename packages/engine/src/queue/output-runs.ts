import type { AttentionSpec } from '@longattn/attention';
import { f32Bytes } from '../blobs/blob-store.ts';
import { blobNames, outputRows } from './blob-layout.ts';

/** The most output bytes (o) one write carries: S3 writes stay single PUTs (under S3_MULTIPART_BYTES). */
const MAX_RUN_BYTES = 8 << 20;

/**
 * A tile job's whole q-blocks' output rows, written as runs: q-blocks whose rows are adjacent in
 * the output blobs (consecutive q-blocks of a head, then the next head's first: plan order) go
 * as one write of o and one of lse, so a job costs two writes however many q-blocks it holds (on
 * S3 two PUTs instead of two per q-block: docs/scaling.md, "Data movement"). A retry writes the
 * same bits at the same offsets, so runs that overlap an earlier attempt's hold the same bytes.
 */
export class OutputRuns {
  private o: Float32Array[] = [];
  private lse: Float32Array[] = [];
  private start = { o: 0, lse: 0 };
  private end = { o: -1, lse: -1 };
  private bytes = 0;

  constructor(
    private readonly job: string,
    private readonly spec: AttentionSpec,
    private readonly write: (name: string, offset: number, data: Uint8Array) => void,
  ) {}

  /** A q-block's merged rows: o [rows, D], lse [rows]; written now or with the adjacent ones that follow. */
  add(block: { b: number; h: number; qStart: number; rows: number }, merged: { o: Float32Array; lse: Float32Array }): void {
    const to = outputRows(this.job, this.spec, block);
    if (to.o.offset !== this.end.o || this.bytes + to.o.length > MAX_RUN_BYTES) {
      this.flush();
      this.start = { o: to.o.offset, lse: to.lse.offset };
    }
    this.o.push(merged.o);
    this.lse.push(merged.lse);
    this.end = { o: to.o.offset + to.o.length, lse: to.lse.offset + to.lse.length };
    this.bytes += to.o.length;
  }

  /** Writes the pending run (call once after the last add). */
  flush(): void {
    if (this.o.length === 0) return;
    // An LSE-only pass's rows are [rows, 0]: no O blob.
    if (this.o.some((o) => o.length > 0)) this.write(blobNames.out(this.job), this.start.o, join(this.o));
    this.write(blobNames.lse(this.job), this.start.lse, join(this.lse));
    this.o = [];
    this.lse = [];
    this.end = { o: -1, lse: -1 };
    this.bytes = 0;
  }
}

/** One array's bytes: a view of it alone, else the arrays copied into one buffer (rows are KiB, not MiB). */
function join(parts: Float32Array[]): Uint8Array {
  if (parts.length === 1) return f32Bytes(parts[0]!);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return f32Bytes(out);
}
