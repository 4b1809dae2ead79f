import type { BatchJob, BatchPartials } from '../batch.ts';
import { batchModel } from './batch-graph.ts';
import { OrtGraph } from './runtime.ts';

/** ort's batched tiles (batch-graph.ts): one session per (D, scale, masked, kind), symbolic C, R and K. */
export class OrtBatches {
  private readonly graphs = new Map<string, Promise<OrtGraph>>();

  constructor(private readonly threads: number) {}

  /** o [C, R, D] and lse [C, R] of the batch, in one call. */
  async run(job: BatchJob): Promise<BatchPartials> {
    const out = await (await this.graph(job, 'tile')).run(this.feeds(job, true));
    return { o: out.o!, lse: out.lse! };
  }

  /** lse [C, R] of the batch without V (inspect's first pass): the same LSE ops, so the same bits as `run`. */
  async lse(job: Omit<BatchJob, 'v'>): Promise<Float32Array> {
    return (await (await this.graph(job, 'lse')).run(this.feeds(job, false))).lse!;
  }

  async dispose(): Promise<void> {
    const graphs = [...this.graphs.values()];
    this.graphs.clear();
    for (const g of graphs) await (await g).dispose();
  }

  private feeds(job: Omit<BatchJob, 'v'> & { v?: Float32Array }, withValues: boolean) {
    const { C, R, K, D } = job;
    return {
      q: { data: plain(job.q), dims: [C, R, D] },
      k: { data: plain(job.k), dims: [C, K, D] },
      ...(withValues ? { v: { data: plain(job.v!), dims: [C, K, D] } } : {}),
      ...(job.full ? {} : { vis: { data: job.visible!, dims: [C, R, K] } }),
    };
  }

  private graph(job: Omit<BatchJob, 'v'>, kind: 'tile' | 'lse'): Promise<OrtGraph> {
    const key = `${kind}:${job.D}:${job.scale}:${!job.full}`;
    let g = this.graphs.get(key);
    if (!g) {
      g = OrtGraph.open(batchModel(job.D, job.scale, !job.full, kind), this.threads);
      this.graphs.set(key, g);
    }
    return g;
  }
}

/** ORT refuses SharedArrayBuffer-backed inputs: the stride path hands plain arrays, this guards the rest. */
function plain(a: Float32Array): Float32Array {
  return a.buffer instanceof SharedArrayBuffer ? a.slice() : a;
}
