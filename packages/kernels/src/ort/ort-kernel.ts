import type { TilePartial } from '@longattn/attention';
import { jsTile, jsTileLse } from '../js/js-kernel.ts';
import { hasNonFinite } from '../nonfinite.ts';
import {
  rowKeyRange,
  type BandJob,
  type BandResult,
  type Backend,
  type KernelOptions,
  type LseTileJob,
  type TileJob,
  type TileKernel,
} from '../tile.ts';
import { OrtGraph } from './runtime.ts';
import { bandModel, lseModel, mhaModel, tileModel } from './tile-graph.ts';

/** Masks kept per kernel, at most this many bytes together (16 MiB). */
const MASK_CACHE_BYTES = 16 << 20;

/**
 * Tiles on onnxruntime's MLAS (tile-graph.ts). One session per (D, scale, masked) with symbolic
 * rows and keys: fixed-shape sessions ran no faster (within 2%, 64×256 to 512×4096 tiles, here)
 * and would need one more session per edge shape. Tiles that the mask does not
 * touch (`full`) run the mask-free graph; the others take a [rows, keys] 0/1 visibility (bool):
 * a pattern tile's own `visible`, or one cached per tile shape and diagonal offset, so the
 * diagonal squares of causal and windowed jobs share one. Same semantics as jsTile: o normalised over the tile's visible keys, lse natural log.
 */
export class OrtTileKernel implements TileKernel {
  readonly backend = 'ort';
  readonly device: string;
  private readonly graphs = new Map<string, Promise<OrtGraph>>();
  private readonly masks = new Map<string, Uint8Array | Float32Array>();
  private maskBytes = 0;
  /** Reused plain buffers for inputs that live in SharedArrayBuffers (ORT refuses those). */
  private readonly scratch = { q: new Float32Array(0), k: new Float32Array(0), v: new Float32Array(0) };

  constructor(readonly threads = 1) {
    this.device = `cpu (onnxruntime MLAS, ${threads} thread${threads === 1 ? '' : 's'})`;
  }

  /**
   * A masked tile runs whole on the masked graph. It used to be split into the columns every row
   * sees (mask-free graph) and the masked edges, merged after: measured here (CPU time, 1 thread),
   * that cost 1.3–3× the whole masked tile (a (1023, 0) band tile 256×1279: 1.2–1.6 ms split vs
   * 0.7–0.9 whole; a causal 256×512 diagonal tile: 1.2–2.5 vs 0.3–0.6) — three calls on odd,
   * changing shapes plus a merge, while the masked graph costs about what the mask-free one does
   * on the same area. It was the main reason a window's compute did not shrink with its area.
   */
  run(job: TileJob): Promise<TilePartial> {
    return this.runPart(job);
  }

  private async runPart(job: TileJob): Promise<TilePartial> {
    const { rows, keys, D } = job;
    const masked = !job.full;
    if (job.sole && job.full && job.finite) return this.sole(job);
    // The masked graph lets masked keys reach the arithmetic: MatMul(P, V) adds a masked key's
    // 0·±∞ = NaN, and a visible score that is NaN/±∞ takes the graph's clamps. A masked part holding NaN/±∞
    // (--allow-nonfinite only) runs on jsTile, which visits visible keys only. The scan reads
    // (rows + 2·keys)·D values against the part's 4·rows·keys·D FLOP (docs/nonfinite.md); it is
    // skipped when the inputs were checked finite at the boundary (job.finite).
    if (masked && !job.finite && (hasNonFinite(job.q) || hasNonFinite(job.k) || hasNonFinite(job.v))) return jsTile(job);
    const graph = await this.graph(D, job.scale, masked);
    const out = await graph.run({
      q: { data: this.plain('q', job.q), dims: [rows, D] },
      k: { data: this.plain('k', job.k), dims: [keys, D] },
      v: { data: this.plain('v', job.v), dims: [keys, D] },
      ...(masked ? { vis: { data: this.mask(job), dims: [rows, keys] } } : {}),
    });
    return { rows, D, kStart: job.kStart, o: out.o!, lse: out.lse! };
  }

  /**
   * A sole mask-free tile (docs/math.md, "Sole tiles"): o from MultiHeadAttention (mhaModel), the
   * lse from the V-free graph when the caller wants it (the same bits as the tile graph's), zeros
   * when it does not (`oOnly`). Inputs checked finite only (job.finite): MHA's handling of NaN/±∞
   * is not the tile graph's documented one (docs/nonfinite.md).
   */
  private async sole(job: TileJob): Promise<TilePartial> {
    const { rows, keys, D } = job;
    const graph = await this.graph(D, job.scale, false, 'mha');
    const q = this.plain('q', job.q);
    const k = this.plain('k', job.k);
    const out = await graph.run({
      q: { data: q, dims: [1, rows, D] },
      k: { data: k, dims: [1, keys, D] },
      v: { data: this.plain('v', job.v), dims: [1, keys, D] },
    });
    const lse = job.oOnly ? new Float32Array(rows) : await this.lse({ ...job, q, k });
    return { rows, D, kStart: job.kStart, o: out.o!, lse };
  }

  /**
   * The V-free tile (lseModel): the same Gemm, mask and LSE ops as `run`'s graphs without P·V,
   * so the same LSE bits; a masked tile holding NaN/±∞ runs on jsTileLse, as `run` falls back to jsTile.
   */
  async lse(job: LseTileJob): Promise<Float32Array> {
    const { rows, keys, D } = job;
    const masked = !job.full;
    if (masked && !job.finite && (hasNonFinite(job.q) || hasNonFinite(job.k))) return jsTileLse(job);
    const graph = await this.graph(D, job.scale, masked, 'lse');
    const out = await graph.run({
      q: { data: this.plain('q', job.q), dims: [rows, D] },
      k: { data: this.plain('k', job.k), dims: [keys, D] },
      ...(masked ? { vis: { data: this.mask(job), dims: [rows, keys] } } : {}),
    });
    return out.lse!;
  }

  /**
   * A band tile in one call of bandModel (docs/math.md, "Band tiles"): [B, r, D] queries against
   * [B, K, D] keys and values, the positional visibility cached per (r, K, shared, width). Non-finite
   * inputs (--allow-nonfinite only) return null: the tile runs as its parts, whose masked tiles fall
   * back to jsTile as `run` does (MatMul(P, V) would add a masked key's 0·±∞).
   */
  async band(job: BandJob): Promise<BandResult | null> {
    const { B, r, keys, D } = job;
    if (!job.finite && (hasNonFinite(job.q) || hasNonFinite(job.k) || hasNonFinite(job.v))) return null;
    if (job.finite) {
      // o from MultiHeadAttention with the band's 0/−∞ bias (docs/math.md, "Sole tiles"), the lse
      // from the V-free band graph unless the caller wants none (a sole band tile, no LSE written).
      const mha = await this.graph(D, job.scale, true, 'mha');
      const q = this.plain('q', job.q);
      const k = this.plain('k', job.k);
      const out = await mha.run({
        q: { data: q, dims: [B, r, D] },
        k: { data: k, dims: [B, keys, D] },
        v: { data: this.plain('v', job.v), dims: [B, keys, D] },
        bias: { data: this.bandBias(job), dims: [1, 1, r, keys] },
      });
      const lse = job.oOnly ? new Float32Array(B * r) : await this.bandLse({ ...job, q, k });
      return lse ? { o: out.o!, lse } : null;
    }
    const graph = await this.graph(D, job.scale, true, 'band');
    const out = await graph.run({
      q: { data: this.plain('q', job.q), dims: [B, r, D] },
      k: { data: this.plain('k', job.k), dims: [B, keys, D] },
      v: { data: this.plain('v', job.v), dims: [B, keys, D] },
      vis: { data: this.bandMask(job), dims: [r, keys] },
    });
    return { o: out.o!, lse: out.lse! };
  }

  /** band's V-free tile: bandModel without P·V, the same ops forming the LSE, so the same bits. */
  async bandLse(job: Omit<BandJob, 'v'>): Promise<Float32Array | null> {
    const { B, r, keys, D } = job;
    if (!job.finite && (hasNonFinite(job.q) || hasNonFinite(job.k))) return null;
    const graph = await this.graph(D, job.scale, true, 'bandLse');
    const out = await graph.run({
      q: { data: this.plain('q', job.q), dims: [B, r, D] },
      k: { data: this.plain('k', job.k), dims: [B, keys, D] },
      vis: { data: this.bandMask(job), dims: [r, keys] },
    });
    return out.lse!;
  }

  async dispose(): Promise<void> {
    const graphs = [...this.graphs.values()];
    this.graphs.clear();
    this.masks.clear();
    for (const g of graphs) await (await g).dispose();
  }

  private graph(D: number, scale: number, masked: boolean, kind: 'tile' | 'lse' | 'band' | 'bandLse' | 'mha' = 'tile'): Promise<OrtGraph> {
    const key = `${kind}:${D}:${scale}:${masked}`;
    let g = this.graphs.get(key);
    if (!g) {
      const model =
        kind === 'mha'
          ? mhaModel(D, scale, masked)
          : kind === 'band' || kind === 'bandLse'
            ? bandModel(D, scale, kind === 'bandLse')
            : (kind === 'lse' ? lseModel : tileModel)('rows', 'keys', D, scale, masked);
      g = OrtGraph.open(model, this.threads);
      this.graphs.set(key, g);
    }
    return g;
  }

  /**
   * `a` itself, or a copy in this kernel's reused scratch buffer when it lives in a
   * SharedArrayBuffer. A fresh copy per tile (MBs, many per second) lands in V8's large-object
   * space, which only major GCs reclaim: peak RSS grew by hundreds of MB before this.
   */
  private plain(name: 'q' | 'k' | 'v', a: Float32Array): Float32Array {
    if (!(a.buffer instanceof SharedArrayBuffer)) return a;
    if (this.scratch[name].length < a.length) this.scratch[name] = new Float32Array(a.length);
    const view = this.scratch[name].subarray(0, a.length);
    view.set(a);
    return view;
  }

  /** A band's [r, K] visibility: row x sees columns [0, shared) and [shared + x, shared + x + width); cached as `mask`'s. */
  private bandMask({ r, keys, shared, width }: Pick<BandJob, 'r' | 'keys' | 'shared' | 'width'>): Uint8Array {
    const key = `band:${r}x${keys}:${shared}:${width}`;
    const hit = this.masks.get(key);
    if (hit) return hit as Uint8Array;
    const mask = new Uint8Array(r * keys);
    for (let x = 0; x < r; x++) {
      mask.fill(1, x * keys, x * keys + shared);
      mask.fill(1, x * keys + shared + x, x * keys + shared + x + width);
    }
    return this.keep(key, mask);
  }

  /** bandMask as MultiHeadAttention's additive bias [r, K]: 0 where visible, −∞ where not; cached as `mask`'s. */
  private bandBias({ r, keys, shared, width }: Pick<BandJob, 'r' | 'keys' | 'shared' | 'width'>): Float32Array {
    const key = `bias:${r}x${keys}:${shared}:${width}`;
    const hit = this.masks.get(key);
    if (hit) return hit as Float32Array;
    const bias = new Float32Array(r * keys).fill(-Infinity);
    for (let x = 0; x < r; x++) {
      bias.fill(0, x * keys, x * keys + shared);
      bias.fill(0, x * keys + shared + x, x * keys + shared + x + width);
    }
    return this.keep(key, bias);
  }

  /**
   * [rows, keys] visibility, 1 where row r sees key c: a sparse pattern tile's own (computeTiles
   * marks it in a reused buffer), else built from the rule and cached by shape and diagonal offset.
   */
  private mask(job: LseTileJob): Uint8Array {
    if (job.visible) return job.visible;
    const { rows, keys, rule } = job;
    const key = `${rows}x${keys}:${job.qStart + rule.diag - job.kStart}:${rule.left}:${rule.right}`;
    const hit = this.masks.get(key);
    if (hit) return hit as Uint8Array;
    const mask = new Uint8Array(rows * keys);
    for (let r = 0; r < rows; r++) {
      const [lo, hi] = rowKeyRange(job, r);
      if (hi >= lo) mask.fill(1, r * keys + lo, r * keys + hi + 1);
    }
    return this.keep(key, mask);
  }

  /** Caches a mask, dropping the oldest beyond MASK_CACHE_BYTES. */
  private keep<T extends Uint8Array | Float32Array>(key: string, mask: T): T {
    while (this.maskBytes + mask.byteLength > MASK_CACHE_BYTES && this.masks.size > 0) {
      const [oldest, old] = this.masks.entries().next().value!; // Map keeps insertion order: drop the oldest
      this.masks.delete(oldest);
      this.maskBytes -= old.byteLength;
    }
    this.masks.set(key, mask);
    this.maskBytes += mask.byteLength;
    return mask;
  }
}

export const ortBackend: Backend = {
  name: 'ort',
  summary: 'onnxruntime-node MLAS GEMMs (fast CPU path; tile math as a small ONNX graph)',
  defaultBlocks: { blockQ: 256, blockK: 2048 },
  async describe(options: KernelOptions = {}) {
    const threads = options.threads ?? 1;
    return `cpu (onnxruntime MLAS, ${threads} thread${threads === 1 ? '' : 's'} per kernel)`;
  },
  async probe(): Promise<string | null> {
    try {
      const kernel = new OrtTileKernel(1);
      const rule = { diag: 0, left: Infinity, right: Infinity };
      const one = Float32Array.of(1);
      const p = await kernel.run({ rows: 1, keys: 1, D: 1, scale: 1, qStart: 0, kStart: 0, rule, full: true, q: one, k: one, v: one });
      await kernel.dispose();
      return p.o[0] === 1 && p.lse[0] === 1 ? null : `onnxruntime-node gave o=${p.o[0]}, lse=${p.lse[0]} for a 1×1 tile`;
    } catch (e) {
      return `onnxruntime-node unavailable: ${String(e instanceof Error ? e.message : e).split('\n')[0]}`;
    }
  },
  async create(options: KernelOptions = {}): Promise<TileKernel> {
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`ort: threads must be an integer ≥ 1, got ${threads}`);
    return new OrtTileKernel(threads);
  },
};
