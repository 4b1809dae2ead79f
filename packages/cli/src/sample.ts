import { gaussian, mulberry32 as rng } from '@longattn/tensor';

/**
 * A sample long document's Q/K/V, made in code (no downloads): a token stream with repeated
 * phrases over a small vocabulary, each token a learned-looking embedding, projected per head.
 * Q/K/V = X·W for X = token embedding + position signal — the projections the research notes
 * describe — computed per vocabulary entry once, so making 32K tokens is O(n·H·D).
 * Shapes: q [H, n, D], k and v [Hk, n, D] (bhsd, batch dropped), float32.
 */
export interface Sample {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  tokens: Int32Array;
  /** With `planted`: which heads were given which structure (for `demo --inspect` to show). */
  planted?: Planted;
}

/**
 * Structure planted into a sample's heads (`planted: true`), for `longattn demo --inspect`:
 * `local` heads attend to the few tokens just before, the `sink` head to the first SINK_KEYS
 * tokens, the `retrieve` head to one marked token far back (`position`). Needs H ≥ 4 (fewer: what fits).
 */
export interface Planted {
  local: number[];
  sink?: number;
  retrieve?: { head: number; position: number };
}

/** Keys the sink head is drawn to (the demo reports sinkShare over the same number). */
export const SINK_KEYS = 4;

export function makeSample(options: {
  n: number;
  H: number;
  Hk?: number;
  D: number;
  seed?: number;
  vocab?: number;
  planted?: boolean;
}): Sample {
  const { n, H, D } = options;
  const Hk = options.Hk ?? H;
  const vocab = options.vocab ?? 512;
  const next = rng(options.seed ?? 1);
  const normal = gaussian(next);
  // A document: phrases of 3–12 tokens drawn from a phrase book, so tokens recur at long range.
  const phrases = Array.from({ length: 64 }, () => Array.from({ length: 3 + Math.floor(next() * 10) }, () => Math.floor(next() * vocab)));
  const tokens = new Int32Array(n);
  for (let i = 0; i < n; ) {
    for (const t of phrases[Math.floor(next() * phrases.length)]!) if (i < n) tokens[i++] = t;
  }
  const table = (heads: number, gain: number) => {
    const t = new Float32Array(vocab * heads * D);
    for (let i = 0; i < t.length; i++) t[i] = normal() * gain;
    return t;
  };
  const qTable = table(H, 1);
  const kTable = table(Hk, 1);
  const vTable = table(Hk, 1);
  const freq = Array.from({ length: D }, (_, d) => 10000 ** (-(2 * Math.floor(d / 2)) / D));
  const project = (tab: Float32Array, heads: number, positional: number) => {
    const out = new Float32Array(heads * n * D);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < n; i++) {
        const src = (tokens[i]! * heads + h) * D;
        const dst = (h * n + i) * D;
        for (let d = 0; d < D; d++) {
          const pos = d % 2 === 0 ? Math.sin(i * freq[d]!) : Math.cos(i * freq[d]!);
          out[dst + d] = tab[src + d]! + positional * pos;
        }
      }
    }
    return out;
  };
  const q = project(qTable, H, 0.5);
  const k = project(kTable, Hk, 0.5);
  const sample: Sample = { q, k, v: project(vTable, Hk, 0), tokens };
  if (options.planted && Hk === H) sample.planted = plant(q, k, n, H, D);
  return sample;
}

/**
 * Plants the structure of `Planted` into q and k ([H, n, D], self-attention): local heads get a
 * strong position code in both (q_i·k_j peaks at j = i and falls off within a few tokens), the sink
 * and retrieval heads a shared direction u added to every query and to the chosen keys only, so
 * those keys score ~12 above the rest (e^12 ≈ 1.6·10⁵ times the weight of any other key).
 */
function plant(q: Float32Array, k: Float32Array, n: number, H: number, D: number): Planted {
  const planted: Planted = { local: [] };
  const boost = (h: number, keys: number[]) => {
    const gain = Math.sqrt(12 * Math.sqrt(D)); // q·k gain² along u, times scale 1/√D: +12
    for (let i = 0; i < n; i++) q[(h * n + i) * D] = gain;
    for (const j of keys) k[(h * n + j) * D] = gain;
    for (let i = 0; i < n; i++) if (!keys.includes(i)) k[(h * n + i) * D] = 0;
  };
  for (const h of [0, 1].filter((h) => h < H)) {
    // Position codes at high frequencies only: Σ_d cos((i − j)·ω_d) is largest at i = j.
    const gain = 2.2;
    for (let i = 0; i < n; i++) {
      for (let d = 0; d + 1 < D; d += 2) {
        const w = 0.9 ** (d / 2);
        q[(h * n + i) * D + d] = gain * Math.sin(i * w);
        q[(h * n + i) * D + d + 1] = gain * Math.cos(i * w);
        k[(h * n + i) * D + d] = gain * Math.sin(i * w);
        k[(h * n + i) * D + d + 1] = gain * Math.cos(i * w);
      }
    }
    planted.local.push(h);
  }
  if (H > 2) {
    boost(
      2,
      Array.from({ length: Math.min(SINK_KEYS, n) }, (_, j) => j),
    );
    planted.sink = 2;
  }
  if (H > 3 && n >= 16) {
    const position = Math.floor(n / 8);
    boost(3, [position]);
    planted.retrieve = { head: 3, position };
  }
  return planted;
}
