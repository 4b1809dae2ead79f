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

/**
 * The state of keys k, v ([keys, D] float32 each) starting at key kStart. Each element is one
 * dot product over the keys in key order, accumulated in a register, four columns at a time
 * (2.5–3× the speed of a key-major loop that stores every partial sum, same summation order).
 */
export function keyState(k: Float32Array, v: Float32Array, keys: number, D: number, kStart: number): LinearState {
  const state = emptyState(D, kStart);
  const { s, z } = state;
  const fk = new Float64Array(keys * D);
  for (let i = 0; i < keys * D; i++) fk[i] = phi(k[i]!);
  for (let a = 0; a < D; a++) {
    let sum = 0;
    for (let j = 0; j < keys; j++) sum += fk[j * D + a]!;
    z[a] = sum;
    const row = a * D;
    let c = 0;
    for (; c + 4 <= D; c += 4) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let j = 0; j < keys; j++) {
        const f = fk[j * D + a]!;
        const at = j * D + c;
        s0 += f * v[at]!;
        s1 += f * v[at + 1]!;
        s2 += f * v[at + 2]!;
        s3 += f * v[at + 3]!;
      }
      s[row + c] = s0;
      s[row + c + 1] = s1;
      s[row + c + 2] = s2;
      s[row + c + 3] = s3;
    }
    for (; c < D; c++) {
      let s0 = 0;
      for (let j = 0; j < keys; j++) s0 += fk[j * D + a]! * v[j * D + c]!;
      s[row + c] = s0;
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

/**
 * Every row reads the state: num[r] += φ(q_r)ᵀ s, den[r] += φ(q_r)·z. fq: φ(q) [rows, D].
 * Each output is a dot product over a in order, in a register, for four rows at a time against
 * the transposed state (2.6× a loop storing num per term, measured here; the same bits).
 */
export function applyState(acc: LinearRows, fq: Float64Array, state: LinearState): void {
  const { rows, D, num, den } = acc;
  const { s, z } = state;
  const sT = new Float64Array(D * D);
  for (let a = 0; a < D; a++) for (let c = 0; c < D; c++) sT[c * D + a] = s[a * D + c]!;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const q0 = r * D;
    const q1 = q0 + D;
    const q2 = q1 + D;
    const q3 = q2 + D;
    for (let c = 0; c <= D; c++) {
      const t = c < D ? sT.subarray(c * D, c * D + D) : z; // the last column: the denominator against z
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let a = 0; a < D; a++) {
        const x = t[a]!;
        a0 += fq[q0 + a]! * x;
        a1 += fq[q1 + a]! * x;
        a2 += fq[q2 + a]! * x;
        a3 += fq[q3 + a]! * x;
      }
      if (c < D) {
        num[q0 + c]! += a0;
        num[q1 + c]! += a1;
        num[q2 + c]! += a2;
        num[q3 + c]! += a3;
      } else {
        den[r]! += a0;
        den[r + 1]! += a1;
        den[r + 2]! += a2;
        den[r + 3]! += a3;
      }
    }
  }
  for (; r < rows; r++) {
    const q0 = r * D;
    for (let c = 0; c <= D; c++) {
      const t = c < D ? sT.subarray(c * D, c * D + D) : z;
      let a0 = 0;
      for (let a = 0; a < D; a++) a0 += fq[q0 + a]! * t[a]!;
      if (c < D) num[q0 + c]! += a0;
      else den[r]! += a0;
    }
  }
}

/**
 * The exact quadratic form over keys k, v ([keys, D] float32, from key kStart): row r adds keys
 * kStart … min(kStart + keys, lastKey(r) + 1) − 1 (the causal diagonal): their weights
 * w_j = φ(q_r)·φ(k_j) first, then Σ_j w_j v_j and Σ_j w_j, each summed in key order in a
 * register and added to the row's running sums once.
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
  const w = new Float64Array(keys);
  for (let r = 0; r < rows; r++) {
    const qb = r * D;
    const end = Math.min(keys, lastKey(r) + 1 - kStart);
    if (end <= 0) continue;
    let d = 0;
    for (let j = 0; j < end; j++) {
      const kb = j * D;
      let x = 0;
      for (let a = 0; a < D; a++) x += fq[qb + a]! * fk[kb + a]!;
      w[j] = x;
      d += x;
    }
    den[r]! += d;
    let c = 0;
    for (; c + 4 <= D; c += 4) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let j = 0; j < end; j++) {
        const x = w[j]!;
        const at = j * D + c;
        s0 += x * v[at]!;
        s1 += x * v[at + 1]!;
        s2 += x * v[at + 2]!;
        s3 += x * v[at + 3]!;
      }
      num[qb + c]! += s0;
      num[qb + c + 1]! += s1;
      num[qb + c + 2]! += s2;
      num[qb + c + 3]! += s3;
    }
    for (; c < D; c++) {
      let s0 = 0;
      for (let j = 0; j < end; j++) s0 += w[j]! * v[j * D + c]!;
      num[qb + c]! += s0;
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
