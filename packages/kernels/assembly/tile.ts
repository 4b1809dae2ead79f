// AssemblyScript (compiled by scripts/build-wasm.mjs with --enable simd): the wasm backend's tile.
//
// Same semantics as jsTile (src/js/js-kernel.ts). The host lays a tile out in linear memory
// (src/wasm/layout.ts) and calls tile(); every pointer below is a byte offset.
//
// Shapes (float32 unless noted; R8 = rows rounded up to 8, K4 = keys rounded up to 4):
//   q   [rows, D]        raw queries             qp  [R8/8, D, 8]  query panels (rows in lanes)
//   k   [keys, D]        raw keys                kp  [K4/4, D, 4]  key panels
//   v   [K4·D + 4]       raw values, tail zeroed here (padded keys read 0, a D-tail reads finite data)
//   lo, hi [R8] i32      each row's visible keys [lo, hi] relative to kStart; empty: hi < lo
//   sc  [K4, 8]          scores then probabilities of one 8-row block, key-major (rows in lanes)
//   acc [D4/4, 4, 8]     P·V accumulators of one 8-row block (D4 = D rounded up to 4)
//   st  [4 v128]         row max and row sum of the block
//   o   [rows, D]        output, normalised;  lse [rows], -Infinity for a row that saw no key
// With values = false (the V-free tile, TileKernel.lse) v, acc and o are not touched: lse only.
//
// Per block of 8 rows: S = scale·Q Kᵀ over the block's key span (8 rows × 4 keys in registers),
// mask to each row's [lo, hi] with -Infinity, row max, p = exp(s − max) (a Cephes-style
// polynomial, ~1 ulp), P·V (8 rows × 4 dims in registers, keys in chunks that stay in L1),
// then o = acc / Σp and lse = max + log Σp. Fixed summation order: bitwise deterministic.
// Non-finite inputs (--allow-nonfinite) follow docs/nonfinite.md: NaN and +∞ scores make the row NaN
// through exp, and a tile whose v holds NaN/±∞ takes pvMasked so masked keys stay out of every row.

/** Bytes of values one P·V key chunk may touch, so it stays in L1 across the D/4 passes. */
const CHUNK_BYTES: i32 = 32768;

export function heapBase(): usize {
  return __heap_base;
}

/**
 * exp's constants as v128s in memory: the loop loads them into locals once, because V8 would
 * rebuild every v128.const inside the loop (three instructions each).
 */
const EXP_CONSTANTS = memory.data<f32>([
  -87.0, -87.0, -87.0, -87.0, // EXP_MIN: below it p = 0 (e^-87 ≈ 1.6e-38, far below a row sum ≥ 1)
  1.44269504088896341, 1.44269504088896341, 1.44269504088896341, 1.44269504088896341, // log2 e
  12582912.0, 12582912.0, 12582912.0, 12582912.0, // 1.5·2²³: adding it rounds to an integer
  0.693359375, 0.693359375, 0.693359375, 0.693359375, // ln 2, high part
  -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, // ln 2, low part
  1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, // Cephes expf polynomial
  1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3,
  8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3,
  4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2,
  1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1,
  5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1,
  1.0, 1.0, 1.0, 1.0,
], 16);

/**
 * exp(x) lane-wise for x ≤ 0: x clamped to ≥ −87, x = n·ln2 + r (n by the 1.5·2²³ rounding
 * trick, ln2 in two parts), e^r by Cephes' expf polynomial (~1 ulp), 2ⁿ added to the exponent
 * bits; 0 where x < −87, so −Infinity gives exactly 0; NaN where x is NaN (s = NaN, or s = +∞ = max).
 * Constants come in as locals (see above).
 */
// @ts-ignore: decorator
@inline
function expNeg(
  x: v128, cMin: v128, cLog2e: v128, cRound: v128, cLn2Hi: v128, cLn2Lo: v128,
  p0: v128, p1: v128, p2: v128, p3: v128, p4: v128, p5: v128, one: v128,
): v128 {
  const xc = f32x4.pmax(x, cMin);
  const t = f32x4.add(f32x4.mul(xc, cLog2e), cRound);
  const n = f32x4.sub(t, cRound);
  let r = f32x4.sub(xc, f32x4.mul(n, cLn2Hi));
  r = f32x4.sub(r, f32x4.mul(n, cLn2Lo));
  let y = f32x4.add(f32x4.mul(p0, r), p1);
  y = f32x4.add(f32x4.mul(y, r), p2);
  y = f32x4.add(f32x4.mul(y, r), p3);
  y = f32x4.add(f32x4.mul(y, r), p4);
  y = f32x4.add(f32x4.mul(y, r), p5);
  y = f32x4.add(f32x4.add(f32x4.mul(y, f32x4.mul(r, r)), r), one);
  const e = v128.and(i32x4.add(y, i32x4.shl(t, 23)), f32x4.ge(x, cMin));
  return v128.or(e, f32x4.ne(x, x)); // NaN in, NaN out (all ones): IEEE's exp, never a silent 0
}

/**
 * p = exp(s − max) in place over sc[c0, c1) (rows in lanes: m0 for rows 0–3, m1 for rows 4–7);
 * stores the row sums Σp at st+32 (rows 0–3) and st+48 (rows 4–7).
 */
function softmaxExp(sc: usize, c0: i32, c1: i32, m0: v128, m1: v128, st: usize): void {
  const cMin = v128.load(EXP_CONSTANTS, 0);
  const cLog2e = v128.load(EXP_CONSTANTS, 16);
  const cRound = v128.load(EXP_CONSTANTS, 32);
  const cLn2Hi = v128.load(EXP_CONSTANTS, 48);
  const cLn2Lo = v128.load(EXP_CONSTANTS, 64);
  const p0 = v128.load(EXP_CONSTANTS, 80);
  const p1 = v128.load(EXP_CONSTANTS, 96);
  const p2 = v128.load(EXP_CONSTANTS, 112);
  const p3 = v128.load(EXP_CONSTANTS, 128);
  const p4 = v128.load(EXP_CONSTANTS, 144);
  const p5 = v128.load(EXP_CONSTANTS, 160);
  const one = v128.load(EXP_CONSTANTS, 176);
  let z0 = f32x4.splat(0), z1 = f32x4.splat(0);
  const end = sc + (<usize>c1 << 5);
  for (let p = sc + (<usize>c0 << 5); p < end; p += 32) {
    const e0 = expNeg(f32x4.sub(v128.load(p), m0), cMin, cLog2e, cRound, cLn2Hi, cLn2Lo, p0, p1, p2, p3, p4, p5, one);
    v128.store(p, e0);
    z0 = f32x4.add(z0, e0);
    const e1 = expNeg(f32x4.sub(v128.load(p, 16), m1), cMin, cLog2e, cRound, cLn2Hi, cLn2Lo, p0, p1, p2, p3, p4, p5, one);
    v128.store(p, e1, 16);
    z1 = f32x4.add(z1, e1);
  }
  v128.store(st, z0, 32);
  v128.store(st, z1, 48);
}

/**
 * Rearranges q and k into panels and zeroes v's tail (see the shapes above). Returns whether v holds
 * a NaN or ±Infinity (x − x is NaN exactly then): such a tile takes pvMasked (see there).
 */
function prepare(q: usize, qp: usize, k: usize, kp: usize, v: usize, rows: i32, keys: i32, D: i32, values: bool): bool {
  const R8 = (rows + 7) & ~7;
  const K4 = (keys + 3) & ~3;
  for (let r = 0; r < R8; r++) {
    const dst = qp + (<usize>((r >> 3) * D) << 5) + (<usize>(r & 7) << 2);
    if (r < rows) {
      const src = q + (<usize>(r * D) << 2);
      for (let d = 0; d < D; d++) store<f32>(dst + (<usize>d << 5), load<f32>(src + (<usize>d << 2)));
    } else {
      for (let d = 0; d < D; d++) store<f32>(dst + (<usize>d << 5), 0);
    }
  }
  for (let c = 0; c < K4; c++) {
    const dst = kp + (<usize>((c >> 2) * D) << 4) + (<usize>(c & 3) << 2);
    if (c < keys) {
      const src = k + (<usize>(c * D) << 2);
      for (let d = 0; d < D; d++) store<f32>(dst + (<usize>d << 4), load<f32>(src + (<usize>d << 2)));
    } else {
      for (let d = 0; d < D; d++) store<f32>(dst + (<usize>d << 4), 0);
    }
  }
  if (!values) return false; // the V-free tile: no v to pad or scan
  memory.fill(v + (<usize>(keys * D) << 2), 0, (<usize>((K4 - keys) * D + 4)) << 2);
  let bad = i32x4.splat(0);
  const vEnd = v + (<usize>(keys * D) << 2);
  for (let p = v; p < vEnd; p += 16) {
    const x = v128.load(p);
    const d = f32x4.sub(x, x);
    bad = v128.or(bad, f32x4.ne(d, d));
  }
  return v128.any_true(bad);
}

/** S[c0, c1) = scale · Q_block Kᵀ into sc, key-major: sc[c] = (rows 0–3, rows 4–7). */
function scores(qb: usize, kp: usize, sc: usize, c0: i32, c1: i32, D: i32, scale: f32): void {
  const s = f32x4.splat(scale);
  for (let c = c0; c < c1; c += 4) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    let qq = qb;
    let kk = kp + (<usize>(c * D) << 2);
    for (let d = 0; d < D; d++) {
      const lo = v128.load(qq);
      const hi = v128.load(qq, 16);
      let t = v128.load32_splat(kk);
      a0 = f32x4.add(a0, f32x4.mul(lo, t));
      b0 = f32x4.add(b0, f32x4.mul(hi, t));
      t = v128.load32_splat(kk, 4);
      a1 = f32x4.add(a1, f32x4.mul(lo, t));
      b1 = f32x4.add(b1, f32x4.mul(hi, t));
      t = v128.load32_splat(kk, 8);
      a2 = f32x4.add(a2, f32x4.mul(lo, t));
      b2 = f32x4.add(b2, f32x4.mul(hi, t));
      t = v128.load32_splat(kk, 12);
      a3 = f32x4.add(a3, f32x4.mul(lo, t));
      b3 = f32x4.add(b3, f32x4.mul(hi, t));
      qq += 32;
      kk += 16;
    }
    const out = sc + (<usize>c << 5);
    v128.store(out, f32x4.mul(a0, s));
    v128.store(out, f32x4.mul(b0, s), 16);
    v128.store(out, f32x4.mul(a1, s), 32);
    v128.store(out, f32x4.mul(b1, s), 48);
    v128.store(out, f32x4.mul(a2, s), 64);
    v128.store(out, f32x4.mul(b2, s), 80);
    v128.store(out, f32x4.mul(a3, s), 96);
    v128.store(out, f32x4.mul(b3, s), 112);
  }
}

/** acc += P[c0, c1) · V for the block (acc zeroed by the caller). */
function pv(sc: usize, v: usize, acc: usize, c0: i32, c1: i32, D: i32): void {
  const D4 = (D + 3) & ~3;
  const rowBytes = <usize>D << 2;
  let chunk = (CHUNK_BYTES / (D4 * 4 + 32)) & ~3;
  if (chunk < 4) chunk = 4;
  for (let cs = c0; cs < c1; cs += chunk) {
    const ce = min(cs + chunk, c1);
    for (let dc = 0; dc < D4; dc += 4) {
      const ap = acc + (<usize>dc << 5);
      let a0 = v128.load(ap), b0 = v128.load(ap, 16);
      let a1 = v128.load(ap, 32), b1 = v128.load(ap, 48);
      let a2 = v128.load(ap, 64), b2 = v128.load(ap, 80);
      let a3 = v128.load(ap, 96), b3 = v128.load(ap, 112);
      let pp = sc + (<usize>cs << 5);
      let vv = v + (<usize>(cs * D + dc) << 2);
      for (let c = cs; c < ce; c++) {
        const lo = v128.load(pp);
        const hi = v128.load(pp, 16);
        let t = v128.load32_splat(vv);
        a0 = f32x4.add(a0, f32x4.mul(lo, t));
        b0 = f32x4.add(b0, f32x4.mul(hi, t));
        t = v128.load32_splat(vv, 4);
        a1 = f32x4.add(a1, f32x4.mul(lo, t));
        b1 = f32x4.add(b1, f32x4.mul(hi, t));
        t = v128.load32_splat(vv, 8);
        a2 = f32x4.add(a2, f32x4.mul(lo, t));
        b2 = f32x4.add(b2, f32x4.mul(hi, t));
        t = v128.load32_splat(vv, 12);
        a3 = f32x4.add(a3, f32x4.mul(lo, t));
        b3 = f32x4.add(b3, f32x4.mul(hi, t));
        pp += 32;
        vv += rowBytes;
      }
      v128.store(ap, a0);
      v128.store(ap, b0, 16);
      v128.store(ap, a1, 32);
      v128.store(ap, b1, 48);
      v128.store(ap, a2, 64);
      v128.store(ap, b2, 80);
      v128.store(ap, a3, 96);
      v128.store(ap, b3, 112);
    }
  }
}

/**
 * pv for a tile whose v holds NaN or ±Infinity: a row's product p·v is kept only where the row
 * sees the key (lo ≤ c ≤ hi, lanes as in sc), so a masked key's 0 weight times ±∞ (NaN) never
 * reaches a row that cannot see it (docs/nonfinite.md). Visible keys keep IEEE's p·v, 0·∞ = NaN
 * included. No key chunking: only tiles with non-finite values come here.
 */
function pvMasked(sc: usize, v: usize, acc: usize, c0: i32, c1: i32, D: i32, lob: usize, hib: usize): void {
  const D4 = (D + 3) & ~3;
  const rowBytes = <usize>D << 2;
  const lo0 = v128.load(lob), lo1 = v128.load(lob, 16);
  const hi0 = v128.load(hib), hi1 = v128.load(hib, 16);
  for (let dc = 0; dc < D4; dc += 4) {
    const ap = acc + (<usize>dc << 5);
    let a0 = v128.load(ap), b0 = v128.load(ap, 16);
    let a1 = v128.load(ap, 32), b1 = v128.load(ap, 48);
    let a2 = v128.load(ap, 64), b2 = v128.load(ap, 80);
    let a3 = v128.load(ap, 96), b3 = v128.load(ap, 112);
    let pp = sc + (<usize>c0 << 5);
    let vv = v + (<usize>(c0 * D + dc) << 2);
    for (let c = c0; c < c1; c++) {
      const cv = i32x4.splat(c);
      const s0 = v128.and(i32x4.ge_s(cv, lo0), i32x4.le_s(cv, hi0));
      const s1 = v128.and(i32x4.ge_s(cv, lo1), i32x4.le_s(cv, hi1));
      const lo = v128.load(pp);
      const hi = v128.load(pp, 16);
      let t = v128.load32_splat(vv);
      a0 = f32x4.add(a0, v128.and(f32x4.mul(lo, t), s0));
      b0 = f32x4.add(b0, v128.and(f32x4.mul(hi, t), s1));
      t = v128.load32_splat(vv, 4);
      a1 = f32x4.add(a1, v128.and(f32x4.mul(lo, t), s0));
      b1 = f32x4.add(b1, v128.and(f32x4.mul(hi, t), s1));
      t = v128.load32_splat(vv, 8);
      a2 = f32x4.add(a2, v128.and(f32x4.mul(lo, t), s0));
      b2 = f32x4.add(b2, v128.and(f32x4.mul(hi, t), s1));
      t = v128.load32_splat(vv, 12);
      a3 = f32x4.add(a3, v128.and(f32x4.mul(lo, t), s0));
      b3 = f32x4.add(b3, v128.and(f32x4.mul(hi, t), s1));
      pp += 32;
      vv += rowBytes;
    }
    v128.store(ap, a0);
    v128.store(ap, b0, 16);
    v128.store(ap, a1, 32);
    v128.store(ap, b1, 48);
    v128.store(ap, a2, 64);
    v128.store(ap, b2, 80);
    v128.store(ap, a3, 96);
    v128.store(ap, b3, 112);
  }
}

/**
 * One tile (see the shapes at the top). Pointers are byte offsets into this instance's memory.
 * Rows past `rows` in the last block are padding with empty ranges and are never written out.
 */
export function tile(
  q: usize, qp: usize, k: usize, kp: usize, v: usize, lo: usize, hi: usize,
  sc: usize, acc: usize, st: usize, o: usize, lse: usize,
  rows: i32, keys: i32, D: i32, scale: f32, values: bool,
): void {
  const nonfinite = prepare(q, qp, k, kp, v, rows, keys, D, values);
  const D4 = (D + 3) & ~3;
  const blocks = (rows + 7) >> 3;
  for (let b = 0; b < blocks; b++) {
    // The block's key span: the union of its rows' intervals, widened to whole key panels.
    let span0 = keys, span1 = -1;
    for (let r = 0; r < 8; r++) {
      const l = load<i32>(lo + (<usize>(b * 8 + r) << 2));
      const h = load<i32>(hi + (<usize>(b * 8 + r) << 2));
      if (h < l) continue;
      if (l < span0) span0 = l;
      if (h > span1) span1 = h;
    }
    const last = min(rows - b * 8, 8);
    if (span1 < span0) {
      for (let r = 0; r < last; r++) {
        const row = b * 8 + r;
        if (values) memory.fill(o + (<usize>(row * D) << 2), 0, <usize>D << 2);
        store<f32>(lse + (<usize>row << 2), -Infinity);
      }
      continue;
    }
    const c0 = span0 & ~3;
    const c1 = (span1 + 4) & ~3;
    scores(qp + (<usize>(b * D) << 5), kp, sc, c0, c1, D, scale);

    // Mask each row to its own interval.
    for (let r = 0; r < 8; r++) {
      const l = load<i32>(lo + (<usize>(b * 8 + r) << 2));
      const h = load<i32>(hi + (<usize>(b * 8 + r) << 2));
      const lane = sc + (<usize>r << 2);
      if (h < l) {
        for (let c = c0; c < c1; c++) store<f32>(lane + (<usize>c << 5), -Infinity);
        continue;
      }
      for (let c = c0; c < l; c++) store<f32>(lane + (<usize>c << 5), -Infinity);
      for (let c = h + 1; c < c1; c++) store<f32>(lane + (<usize>c << 5), -Infinity);
    }

    // Row max (an empty row's max -Infinity becomes -FLT_MAX so its p stays 0, never NaN; pmax skips
    // a NaN score, whose exp is NaN all the same).
    let m0 = f32x4.splat(-3.4028234663852886e38), m1 = m0;
    for (let c = c0; c < c1; c++) {
      const p = sc + (<usize>c << 5);
      m0 = f32x4.pmax(m0, v128.load(p));
      m1 = f32x4.pmax(m1, v128.load(p, 16));
    }
    v128.store(st, m0);
    v128.store(st, m1, 16);
    softmaxExp(sc, c0, c1, m0, m1, st);

    if (!values) {
      // The V-free tile (inspect's first pass): lse alone, from the same max and Σp as below.
      for (let r = 0; r < last; r++) {
        const z = load<f32>(st + (<usize>r << 2), 32);
        const m = load<f32>(st + (<usize>r << 2));
        store<f32>(lse + (<usize>(b * 8 + r) << 2), <f32>(<f64>m + Math.log(<f64>z)));
      }
      continue;
    }
    memory.fill(acc, 0, <usize>(D4 * 8) << 2);
    if (nonfinite) pvMasked(sc, v, acc, c0, c1, D, lo + (<usize>(b * 8) << 2), hi + (<usize>(b * 8) << 2));
    else pv(sc, v, acc, c0, c1, D);

    for (let r = 0; r < last; r++) {
      const row = b * 8 + r;
      const out = o + (<usize>(row * D) << 2);
      const z = load<f32>(st + (<usize>r << 2), 32);
      // Σp = 0 (every visible score −∞): o = Σ 0·v, 0 or NaN from a ±∞ value; lse = −FLT_MAX + log 0 = −∞.
      const zd: f32 = z == 0 ? 1 : z;
      const m = load<f32>(st + (<usize>r << 2));
      for (let d = 0; d < D; d++) {
        const a = load<f32>(acc + (<usize>(((d >> 2) << 3) + ((d & 3) << 1) + (r >> 2)) << 4) + (<usize>(r & 3) << 2));
        store<f32>(out + (<usize>d << 2), a / zd);
      }
      store<f32>(lse + (<usize>row << 2), <f32>(<f64>m + Math.log(<f64>z)));
    }
  }
}
