/**
 * Linear attention's state format and its merge (docs/math.md, "Linear attention"): the softmax
 * partials' counterpart. For one row, over the keys it may see,
 *   o_i = Σ_j φ(q_i)·φ(k_j) v_j / (Σ_j φ(q_i)·φ(k_j) + 1e-6),   φ(x) = elu(x) + 1, no scale.
 * A run of keys of one kv head folds into a state (s, z) that any row reads in O(D²): the sums
 * over keys factor out of the rows. States merge by addition, always from zero and in ascending
 * kStart order, in float64 — so a sum's bits depend only on the set of states summed.
 */

/** The 1e-6 of the denominator: a row that sees no key has num = 0, den = 0 and gets o = 0. */
export const LINEAR_EPS = 1e-6;

/** φ(x) = elu(x) + 1: x + 1 for x > 0, e^x otherwise (always > 0). */
export function phi(x: number): number {
  return x > 0 ? x + 1 : Math.exp(x);
}

/**
 * Keys [kStart, kStart+keys) of one kv head folded:
 *   s: [D, D] float64, s[a·D + c] = Σ_j φ(k_j)[a] · v_j[c]
 *   z: [D]    float64, z[a]       = Σ_j φ(k_j)[a]
 */
export interface LinearState {
  D: number;
  kStart: number;
  keys: number;
  s: Float64Array;
  z: Float64Array;
}

/** The state of no keys (the zero every sum starts from). */
export function emptyState(D: number, kStart = 0): LinearState {
  return { D, kStart, keys: 0, s: new Float64Array(D * D), z: new Float64Array(D) };
}

/** A copy that can be added into without touching the original (cached prefixes). */
export function copyState(state: LinearState): LinearState {
  return { ...state, s: state.s.slice(), z: state.z.slice() };
}

/** The state of keys k, v ([keys, D] float32 each) starting at key kStart. */
export function keyState(k: Float32Array, v: Float32Array, keys: number, D: number, kStart: number): LinearState {
  const state = emptyState(D, kStart);
  const { s, z } = state;
  const fk = new Float64Array(D);
  for (let j = 0; j < keys; j++) {
    const base = j * D;
    for (let a = 0; a < D; a++) fk[a] = phi(k[base + a]!);
    for (let a = 0; a < D; a++) {
      const f = fk[a]!;
      z[a]! += f;
      const row = a * D;
      for (let c = 0; c < D; c++) s[row + c]! += f * v[base + c]!;
    }
  }
  state.keys = keys;
  return state;
}

/** into += next, in place: `next` must start where `into` ends (the one addition every sum uses). */
export function addInto(into: LinearState, next: LinearState): LinearState {
  if (next.D !== into.D) throw new Error(`linear state: D ${next.D} differs from ${into.D}`);
  if (next.kStart !== into.kStart + into.keys)
    throw new Error(`linear state: keys from ${next.kStart} do not follow [${into.kStart}, ${into.kStart + into.keys})`);
  const { s, z } = into;
  for (let i = 0; i < s.length; i++) s[i]! += next.s[i]!;
  for (let i = 0; i < z.length; i++) z[i]! += next.z[i]!;
  into.keys += next.keys;
  return into;
}

/**
 * The merge: states of consecutive key runs summed from zero in ascending kStart order,
 * whatever order they come in. Associative in exact arithmetic; in float64 the fixed order fixes the bits.
 */
export function addStates(states: readonly LinearState[]): LinearState {
  if (states.length === 0) throw new Error('addStates: no states');
  const ordered = [...states].sort((a, b) => a.kStart - b.kStart);
  const sum = emptyState(ordered[0]!.D, ordered[0]!.kStart);
  for (const st of ordered) addInto(sum, st);
  return sum;
}

/** φ of a block of rows: q [rows, D] float32 → [rows, D] float64. */
export function phiRows(q: Float32Array, rows: number, D: number): Float64Array {
  const out = new Float64Array(rows * D);
  for (let i = 0; i < rows * D; i++) out[i] = phi(q[i]!);
  return out;
}

/**
 * A block of rows' running sums, both float64: num [rows, D] = Σ φ(q)·φ(k_j) v_j, den [rows] = Σ φ(q)·φ(k_j).
 * Parts (a state, then each visible key) are added in key order.
 */
export interface LinearRows {
  rows: number;
  D: number;
  num: Float64Array;
  den: Float64Array;
}

export function emptyRows(rows: number, D: number): LinearRows {
  return { rows, D, num: new Float64Array(rows * D), den: new Float64Array(rows) };
}

/** Every row reads the state: num[r] += φ(q_r)ᵀ s, den[r] += φ(q_r)·z. fq: φ(q) [rows, D]. */
export function applyState(acc: LinearRows, fq: Float64Array, state: LinearState): void {
  const { rows, D, num, den } = acc;
  const { s, z } = state;
  for (let r = 0; r < rows; r++) {
    const qb = r * D;
    let d = 0;
    for (let a = 0; a < D; a++) {
      const f = fq[qb + a]!;
      d += f * z[a]!;
      const row = a * D;
      for (let c = 0; c < D; c++) num[qb + c]! += f * s[row + c]!;
    }
    den[r]! += d;
  }
}

/**
 * The exact quadratic form over keys k, v ([keys, D] float32, from key kStart): row r adds keys
 * kStart … min(kStart + keys, lastKey(r) + 1) − 1, one at a time in key order (the causal diagonal).
 */
export function addKeys(
  acc: LinearRows,
  fq: Float64Array,
  k: Float32Array,
  v: Float32Array,
  kStart: number,
  keys: number,
  lastKey: (row: number) => number,
): void {
  const { rows, D, num, den } = acc;
  const fk = new Float64Array(keys * D);
  for (let i = 0; i < keys * D; i++) fk[i] = phi(k[i]!);
  for (let r = 0; r < rows; r++) {
    const qb = r * D;
    const end = Math.min(keys, lastKey(r) + 1 - kStart);
    for (let j = 0; j < end; j++) {
      const kb = j * D;
      let w = 0;
      for (let a = 0; a < D; a++) w += fq[qb + a]! * fk[kb + a]!;
      den[r]! += w;
      for (let c = 0; c < D; c++) num[qb + c]! += w * v[kb + c]!;
    }
  }
}

/** o = num / (den + 1e-6) as float32 [rows, D]: 0 for a row that saw no key. */
export function finishRows(acc: LinearRows): Float32Array {
  const { rows, D, num, den } = acc;
  const o = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    const inv = den[r]! + LINEAR_EPS;
    for (let c = 0; c < D; c++) o[r * D + c] = num[r * D + c]! / inv;
  }
  return o;
}
