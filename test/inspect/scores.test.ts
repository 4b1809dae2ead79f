import test from 'ava';
import { jsScoreTiles, ortScoreTiles, type ScoreTiles } from '@longattn/kernels';
import { uniformF32 } from '@longattn/tensor';

/**
 * The score tiles of inspect's second pass (kernels/src/score-tiles.ts) against logp = s·q·k − lse,
 * p = exp(logp) and the tile's row and column sums, written here in float64 from the definition,
 * on odd tile shapes, with and without a mask and column groups.
 * Tolerance (docs/math.md, "Attention patterns: precision"): a float32 dot of D terms is within
 * D·2⁻²⁴·Σ|q_d k_d| of the exact one, and rounding scale·dot − lse to float32 adds
 * 2⁻²⁴·(|s·q·k| + |lse|); p = exp(logp) then carries that as a relative error, plus the float32 Exp's
 * few ulp (×2 for MLAS's exp, per element). A float32 sum of n non-negative terms adds at most
 * n·2⁻²⁴ of the sum of their magnitudes, and a float32 product one more 2⁻²⁴. A wrong key, row,
 * scale, mask or group is off by ≫ the bound (|q|, |k| up to 3 here, scores up to ~10).
 */
const U = 2 ** -24;

interface Shape {
  D: number;
  rows: number;
  keys: number;
  scale: number;
}

function check(
  t: import('ava').ExecutionContext,
  tiles: ScoreTiles,
  { D, rows, keys, scale }: Shape,
  seed: number,
  masked: boolean,
  groupCount: number,
) {
  const q = uniformF32(rows * D, seed, -3, 3);
  const k = uniformF32(keys * D, seed + 1, -3, 3);
  const lse = uniformF32(rows, seed + 2, 2, 9);
  const negLse = lse.map((x) => -x);
  const rowPos = uniformF32(rows, seed + 3, -keys, 2 * keys).map(Math.round);
  // A mask with holes, a fully masked row (0), a row that sees every key but key 0 (last), and key 0
  // NaN and masked everywhere: a masked weight is 0 and adds 0 to every sum, whatever its score.
  const mask = masked ? uniformF32(rows * keys, seed + 4, 0, 1).map((x) => (x < 0.3 ? 0 : 1)) : undefined;
  const mask8 = mask ? Uint8Array.from(mask) : undefined;
  if (mask8) {
    mask8.fill(0, 0, keys);
    mask8.fill(1, (rows - 1) * keys, rows * keys);
    for (let r = 0; r < rows; r++) mask8[r * keys] = 0;
    k.fill(Number.NaN, 0, D);
  }
  const groupOf = Array.from({ length: rows }, (_, r) => Math.floor((r * groupCount) / rows));
  const groups = new Float32Array(groupCount * rows);
  groupOf.forEach((g, r) => {
    groups[g * rows + r] = 1;
  });
  const sums = tiles.score({
    q,
    rows,
    k,
    keys,
    negLse,
    rowPos,
    ...(mask8 ? { mask: mask8 } : {}),
    ...(groupCount ? { groups, groupCount } : {}),
  });
  t.is(sums.p.length, rows * keys);
  t.is(sums.columns?.length, groupCount ? groupCount * keys : undefined);
  const colWant = new Float64Array(groupCount * keys);
  const colTol = new Float64Array(groupCount * keys);
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    let plogp = 0;
    let plogpTol = 0;
    let plogpAbs = 0;
    let pdist = 0;
    let pdistTol = 0;
    for (let c = 0; c < keys; c++) {
      const got = sums.p[r * keys + c]!;
      if (mask8 && !mask8[r * keys + c]) {
        if (got !== 0) t.fail(`${tiles.name} masked p (${r}, ${c}) = ${got}, expected 0`);
        continue;
      }
      let dot = 0;
      let abs = 0;
      for (let d = 0; d < D; d++) {
        dot += q[r * D + d]! * k[c * D + d]!;
        abs += Math.abs(q[r * D + d]! * k[c * D + d]!);
      }
      const logw = scale * dot - lse[r]!;
      const bound = (D + 2) * U * scale * abs + 2 * U * (Math.abs(scale * dot) + lse[r]!);
      const pw = Math.exp(logw);
      const pTol = pw * (2 * bound + 4 * U) + 1e-45;
      worst = Math.max(worst, Math.abs(got - pw) / pTol);
      if (Math.abs(got - pw) > pTol) t.fail(`${tiles.name} p (${r}, ${c}): ${got} vs ${pw}`);
      const dist = Math.abs(rowPos[r]! - c);
      plogp += pw * logw;
      plogpAbs += Math.abs(pw * logw);
      plogpTol += pw * bound + pTol * Math.abs(logw) + U * Math.abs(pw * logw);
      pdist += pw * dist;
      pdistTol += pTol * dist + U * pw * dist;
      if (groupCount) {
        colWant[groupOf[r]! * keys + c] += pw;
        colTol[groupOf[r]! * keys + c] += pTol + (rows + 1) * U * pw;
      }
    }
    plogpTol += (keys + 1) * U * plogpAbs + 1e-40;
    pdistTol += (keys + 1) * U * pdist + 1e-40;
    if (!(Math.abs(sums.plogp[r]! - plogp) <= plogpTol)) t.fail(`${tiles.name} Σ p·logp row ${r}: ${sums.plogp[r]} vs ${plogp}`);
    if (!(Math.abs(sums.pdist[r]! - pdist) <= pdistTol)) t.fail(`${tiles.name} Σ p·dist row ${r}: ${sums.pdist[r]} vs ${pdist}`);
  }
  for (let x = 0; x < groupCount * keys; x++)
    if (!(Math.abs(sums.columns![x]! - colWant[x]!) <= colTol[x]! + 1e-40))
      t.fail(`${tiles.name} column sum (group ${Math.floor(x / keys)}, key ${x % keys}): ${sums.columns![x]} vs ${colWant[x]}`);
  t.log(`${tiles.name} ${rows}×${keys} D=${D} mask ${masked} groups ${groupCount}: worst |p error| / bound = ${worst.toFixed(3)}`);
}

for (const [name, make] of [
  ['ort', (D: number, scale: number) => ortScoreTiles(D, scale)],
  ['js', jsScoreTiles],
] as const) {
  test(`score tiles (${name}) against the float64 definition, odd shapes, masks and column groups`, (t) => {
    const shapes: Shape[] = [
      { D: 7, rows: 13, keys: 29, scale: 1 / Math.sqrt(7) },
      { D: 64, rows: 37, keys: 261, scale: 0.125 },
      { D: 5, rows: 1, keys: 3, scale: 0.7 },
      { D: 96, rows: 256, keys: 130, scale: 1 / Math.sqrt(96) },
    ];
    for (const [n, shape] of shapes.entries()) {
      const tiles = make(shape.D, shape.scale);
      if (!tiles) return t.fail('onnxruntime-node did not load (the score tiles call its native session directly)');
      t.is(tiles.name, name);
      check(t, tiles, shape, 40 + 3 * n, false, 0);
      check(t, tiles, shape, 60 + 3 * n, true, Math.min(3, shape.rows));
      check(t, tiles, shape, 70 + 3 * n, false, 1);
      // The same sessions again on a smaller tile: results never leak from the previous call.
      const small = { ...shape, rows: Math.max(1, shape.rows >> 1), keys: Math.max(1, shape.keys >> 2) };
      check(t, tiles, small, 90 + n, true, 0);
      check(t, tiles, small, 95 + n, false, Math.min(2, small.rows));
    }
  });
}
