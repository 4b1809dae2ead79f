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
}

export function makeSample(options: { n: number; H: number; Hk?: number; D: number; seed?: number; vocab?: number }): Sample {
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
  return { q: project(qTable, H, 0.5), k: project(kTable, Hk, 0.5), v: project(vTable, Hk, 0), tokens };
}
