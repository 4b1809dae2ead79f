/**
 * WGSL for one attention tile in two compute passes (FlashAttention-2 with split keys):
 *   attend:  workgroup (rowGroup, split) — WG threads, one query row each (q row and o row in
 *            registers, as vec4 lanes: D is padded to a multiple of 4 with zeros); keys of its split staged BK at a time in workgroup memory; per key block
 *            scores s = scale·q·k, block max, one rescale of (o, l), then P·V. Writes unnormalised
 *            o, running max m and sum l per (split, row).
 *   combine: thread per row — merges the splits in split order (M = max m, w = exp(m − M),
 *            o = Σ w·o / Σ w·l, lse = M + log Σ w·l): deterministic, same bits every run.
 * Shapes: q [rows, D]; kv [2, keys, D] (K then V); part [splits, rows, D + 2] (o…, m, l);
 * out [rows·D + rows] (o normalised, then lse). Rows that see no key get o = 0 here; their
 * lse (−Infinity) is set by the caller (WGSL has no infinity literal). See docs/math.md.
 */

/** Compile-time sizes of one pipeline pair: D head dim (padded to a multiple of 4), BK keys per staged block, WG rows per workgroup. */
export interface ShaderSizes {
  D: number;
  BK: number;
  WG: number;
}

/** Uniform block, 12 × 4 bytes: rows, keys, qStart, kStart, diag, left, right, flags, scale, splitKeys, splits, pad. */
export const PARAM_BYTES = 48;
/** flags: bit 0 = left side unbounded, bit 1 = right side unbounded. */
export const UNBOUNDED_LEFT = 1;
export const UNBOUNDED_RIGHT = 2;

const PARAMS = `
struct Params { rows: u32, keys: u32, qStart: i32, kStart: i32, diag: i32, left: i32, right: i32, flags: u32,
                scale: f32, splitKeys: u32, splits: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
const NEG = -3.0e38; // below any finite score; WGSL has no -inf literal
`;

/** attend: bindings 0 params, 1 q, 2 kv, 3 part (read_write). D must be a multiple of 4 (vec4 lanes). */
export function attendShader({ D, BK, WG }: ShaderSizes): string {
  const W = D + 2;
  const D4 = D / 4;
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> kv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
var<workgroup> ks: array<vec4<f32>, ${BK * D4}>;
var<workgroup> vs: array<vec4<f32>, ${BK * D4}>;

// Visible keys of a row, relative to kStart, clipped to the tile: [lo, hi] (empty when hi < lo).
fn keyRange(row: u32) -> vec2<i32> {
  let i = p.qStart + i32(row);
  var lo = 0;
  var hi = i32(p.keys) - 1;
  if ((p.flags & 1u) == 0u) { lo = max(lo, i + p.diag - p.left - p.kStart); }
  if ((p.flags & 2u) == 0u) { hi = min(hi, i + p.diag + p.right - p.kStart); }
  return vec2<i32>(lo, hi);
}

@compute @workgroup_size(${WG})
fn attend(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row0 = wg.x * ${WG}u;
  let row = row0 + t;
  let live = row < p.rows;
  let lastRow = min(row0 + ${WG}u, p.rows) - 1u;
  let s0 = i32(wg.y * p.splitKeys);
  let s1 = min(i32(p.keys), s0 + i32(p.splitKeys)) - 1;
  // Key bounds grow with the row, so the workgroup's keys run from its first row's lo to its last row's hi.
  let c0 = max(s0, keyRange(row0).x);
  let c1 = min(s1, keyRange(lastRow).y);
  var lo = 1;
  var hi = 0;
  var qr: array<vec4<f32>, ${D4}>;
  var o: array<vec4<f32>, ${D4}>;
  var sc: array<f32, ${BK}>;
  if (live) {
    let r = keyRange(row);
    lo = r.x;
    hi = r.y;
    for (var d = 0u; d < ${D4}u; d++) { qr[d] = q[row * ${D4}u + d]; }
  }
  var m = NEG;
  var l = 0.0;
  let vOff = p.keys * ${D4}u;
  for (var cb = c0; cb <= c1; cb += ${BK}) {
    for (var e = t; e < ${BK * D4}u; e += ${WG}u) {
      let c = cb + i32(e / ${D4}u);
      var kx = vec4<f32>(0.0);
      var vx = vec4<f32>(0.0);
      if (c <= c1) {
        let at = u32(c) * ${D4}u + e % ${D4}u;
        kx = kv[at];
        vx = kv[vOff + at];
      }
      ks[e] = kx;
      vs[e] = vx;
    }
    workgroupBarrier();
    let n = min(${BK}, c1 - cb + 1);
    var bm = m;
    for (var j = 0; j < n; j++) {
      let c = cb + j;
      if (c >= lo && c <= hi) {
        var s = 0.0;
        let kb = u32(j) * ${D4}u;
        for (var d = 0u; d < ${D4}u; d++) { s = s + dot(qr[d], ks[kb + d]); }
        s = s * p.scale;
        sc[j] = s;
        bm = max(bm, s);
      }
    }
    let a = exp(m - bm);
    l = l * a;
    for (var d = 0u; d < ${D4}u; d++) { o[d] = o[d] * a; }
    for (var j = 0; j < n; j++) {
      let c = cb + j;
      if (c >= lo && c <= hi) {
        let pj = exp(sc[j] - bm);
        l = l + pj;
        let vb = u32(j) * ${D4}u;
        for (var d = 0u; d < ${D4}u; d++) { o[d] = o[d] + pj * vs[vb + d]; }
      }
    }
    m = bm;
    workgroupBarrier();
  }
  if (live) {
    let base = (wg.y * p.rows + row) * ${W}u;
    for (var d = 0u; d < ${D4}u; d++) {
      let x = o[d];
      part[base + 4u * d] = x.x;
      part[base + 4u * d + 1u] = x.y;
      part[base + 4u * d + 2u] = x.z;
      part[base + 4u * d + 3u] = x.w;
    }
    part[base + ${D}u] = m;
    part[base + ${D + 1}u] = l;
  }
}
`;
}

/** combine: bindings 0 params, 1 part (read), 2 out (read_write). */
export function combineShader({ D, WG }: ShaderSizes): string {
  const W = D + 2;
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${WG})
fn combine(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= p.rows) { return; }
  var mx = NEG;
  for (var s = 0u; s < p.splits; s++) {
    let b = (s * p.rows + row) * ${W}u;
    if (part[b + ${D + 1}u] > 0.0) { mx = max(mx, part[b + ${D}u]); }
  }
  var z = 0.0;
  for (var s = 0u; s < p.splits; s++) {
    let b = (s * p.rows + row) * ${W}u;
    let l = part[b + ${D + 1}u];
    if (l > 0.0) { z = z + exp(part[b + ${D}u] - mx) * l; }
  }
  var inv = 0.0;
  if (z > 0.0) { inv = 1.0 / z; }
  for (var d = 0u; d < ${D}u; d++) {
    var x = 0.0;
    for (var s = 0u; s < p.splits; s++) {
      let b = (s * p.rows + row) * ${W}u;
      if (part[b + ${D + 1}u] > 0.0) { x = x + exp(part[b + ${D}u] - mx) * part[b + d]; }
    }
    out[row * ${D}u + d] = x * inv;
  }
  var lse = 0.0;
  if (z > 0.0) { lse = mx + log(z); }
  out[p.rows * ${D}u + row] = lse;
}
`;
}
