/**
 * float32 → bfloat16 written from the definition, for tests: of the two bfloat16 values around x
 * (x's float32 bits with the low 16 bits dropped, and the next one up in magnitude) take the nearer;
 * on a tie the one whose last kept bit is 0 (round to nearest, ties to even). Past the largest
 * bfloat16 the next one up is 2^128 (→ ±Infinity), as IEEE rounding says. NaN: a quiet NaN.
 * Deliberately not the library's bit trick (packages/tensor's half.ts), so a shared slip cannot pass.
 */
export function bf16FromDefinition(x: number): number {
  const f = new Float32Array([x]);
  const bits = new Uint32Array(f.buffer)[0]!;
  if (Number.isNaN(f[0]!)) return ((bits >>> 16) | 0x40) & 0xffff;
  const sign = bits >>> 31 ? -1 : 1;
  const lowBits = (bits >>> 16) & 0x7fff; // magnitude, truncated
  if (lowBits === 0x7f80) return bits >>> 16; // ±Infinity
  const value = (b: number) => (b === 0x7f80 ? 2 ** 128 : new Float32Array(new Uint32Array([b << 16]).buffer)[0]!);
  const magnitude = Math.abs(f[0]!);
  const down = value(lowBits);
  const up = value(lowBits + 1);
  const pick = magnitude - down < up - magnitude || (magnitude - down === up - magnitude && (lowBits & 1) === 0) ? lowBits : lowBits + 1;
  return (sign < 0 ? 0x8000 : 0) | pick;
}
