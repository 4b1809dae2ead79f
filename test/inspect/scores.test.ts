import test from 'ava';
import { jsScoreTiles, ortScoreTiles, type ScoreTiles } from '@longattn/kernels';
import { uniformF32 } from '@longattn/tensor';

/**
 * The score tiles of inspect's second pass (kernels/src/score-tiles.ts) against logp = s·q·k − lse
 * and p = exp(logp) written here in float64 from the definition, on odd tile shapes.
 * Tolerance (docs/math.md, "Attention patterns: precision"): a float32 dot of D terms is within
 * D·2⁻²⁴·Σ|q_d k_d| of the exact one, and rounding scale·dot − lse to float32 adds
 * 2⁻²⁴·(|s·q·k| + |lse|); p = exp(logp) then carries that as a relative error, plus the float32 Exp's
 * few ulp. The bound below is that, ×2 for MLAS's exp, per element. A wrong key, row or scale is
 * off by ≫ the bound (|q|, |k| up to 3 here, scores up to ~10).
 */
const U = 2 ** -24;

function check(t: import('ava').ExecutionContext, tiles: ScoreTiles, D: number, rows: number, keys: number, scale: number, seed: number) {
  const q = uniformF32(rows * D, seed, -3, 3);
  const k = uniformF32(keys * D, seed + 1, -3, 3);
  const lse = uniformF32(rows, seed + 2, 2, 9);
  const negLse = lse.map((x) => -x);
  const { logp, p } = tiles.score(q, rows, k, keys, negLse);
  t.is(logp.length, rows * keys);
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < keys; c++) {
      let dot = 0;
      let abs = 0;
      for (let d = 0; d < D; d++) {
        dot += q[r * D + d]! * k[c * D + d]!;
        abs += Math.abs(q[r * D + d]! * k[c * D + d]!);
      }
      const want = scale * dot - lse[r]!;
      const bound = (D + 2) * U * scale * abs + 2 * U * (Math.abs(scale * dot) + lse[r]!);
      const got = logp[r * keys + c]!;
      worst = Math.max(worst, Math.abs(got - want) / bound);
      if (Math.abs(got - want) > bound) t.fail(`${tiles.name} logp (${r}, ${c}): ${got} vs ${want} (bound ${bound})`);
      const pw = Math.exp(want);
      if (Math.abs(p[r * keys + c]! - pw) > pw * (2 * bound + 4 * U) + 1e-45)
        t.fail(`${tiles.name} p (${r}, ${c}): ${p[r * keys + c]} vs ${pw}`);
    }
  }
  t.log(`${tiles.name} ${rows}×${keys} D=${D}: worst |logp error| / bound = ${worst.toFixed(3)}`);
}

for (const [name, make] of [
  ['ort', (D: number, scale: number) => ortScoreTiles(D, scale)],
  ['js', jsScoreTiles],
] as const) {
  test(`score tiles (${name}) against the float64 definition, odd shapes`, (t) => {
    const shapes: [number, number, number, number][] = [
      [7, 13, 29, 1 / Math.sqrt(7)],
      [64, 37, 261, 0.125],
      [5, 1, 3, 0.7],
      [96, 256, 130, 1 / Math.sqrt(96)],
    ];
    for (const [n, [D, rows, keys, scale]] of shapes.entries()) {
      const tiles = make(D, scale);
      if (!tiles) return t.fail('onnxruntime-node did not load (the score tiles call its native session directly)');
      t.is(tiles.name, name);
      check(t, tiles, D, rows, keys, scale, 40 + 3 * n);
      // The same session again on a smaller tile: results never leak from the previous call.
      check(t, tiles, D, Math.max(1, rows >> 1), Math.max(1, keys >> 2), scale, 90 + n);
    }
  });
}
