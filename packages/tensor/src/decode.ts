/**
 * Hot loops: raw little-endian elements in the shared scratch buffer → float32, and the
 * non-finite scan. One scratch per thread (module state), grown on demand up to SCRATCH_MAX.
 */
import os from 'node:os';
import type { DType } from './dtype.ts';
import { F16_TABLE } from './half.ts';

if (os.endianness() !== 'LE') throw new Error('@longattn/tensor needs a little-endian host');

/** Largest scratch buffer and largest chunk any single read goes through (8 MiB). */
export const SCRATCH_MAX = 8 << 20;

/**
 * Strided runs whose gaps are at most this many bytes move through the scratch as one span per
 * syscall (reads gather from it; writes read-modify-write it): one syscall costs more than
 * copying ~16 KB. Measured here (bshd, H = 8, D = 64, f32): per-run calls 8 µs/row, spans 0.5.
 */
export const GATHER_GAP_MAX = 16 << 10;

/** Typed views over one ArrayBuffer (byte offset 0, so every element offset is aligned). */
export interface Scratch {
  readonly bytes: Uint8Array;
  readonly f32: Float32Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
}

let scratch: Scratch | undefined;

/** The shared scratch, at least `bytes` long (callers never ask for more than SCRATCH_MAX). */
export function getScratch(bytes: number): Scratch {
  if (scratch === undefined || scratch.bytes.length < bytes) {
    const size = Math.min(SCRATCH_MAX, Math.max(64 << 10, 2 ** Math.ceil(Math.log2(Math.max(bytes, 8)))));
    const buffer = new ArrayBuffer(Math.max(size, Math.ceil(bytes / 8) * 8));
    scratch = {
      bytes: new Uint8Array(buffer),
      f32: new Float32Array(buffer),
      u16: new Uint16Array(buffer),
      u32: new Uint32Array(buffer),
      f64: new Float64Array(buffer),
    };
  }
  return scratch;
}

/** out[dst … dst+n) = float32 of the n elements of `dtype` at element index `src` of the scratch. */
export function decode(s: Scratch, dtype: DType, src: number, out: Float32Array, dst: number, n: number): void {
  switch (dtype) {
    case 'f32': {
      const a = s.f32;
      if (n >= 128) out.set(a.subarray(src, src + n), dst);
      else for (let i = 0; i < n; i++) out[dst + i] = a[src + i]!;
      return;
    }
    case 'f16': {
      const a = s.u16;
      for (let i = 0; i < n; i++) out[dst + i] = F16_TABLE[a[src + i]!]!;
      return;
    }
    case 'bf16': {
      const a = s.u16;
      const o = new Uint32Array(out.buffer, out.byteOffset + dst * 4, n);
      for (let i = 0; i < n; i++) o[i] = a[src + i]! << 16;
      return;
    }
    case 'f64': {
      const a = s.f64;
      for (let i = 0; i < n; i++) out[dst + i] = a[src + i]!;
      return;
    }
  }
}

/** Index of the first NaN or ±Infinity among the first n float32s (as their bits), or -1. */
export function firstNonFiniteF32(bits: Uint32Array, n: number = bits.length): number {
  for (let i = 0; i < n; i++) if ((bits[i]! & 0x7f800000) === 0x7f800000) return i;
  return -1;
}

/**
 * Index (within the chunk) of the first element of `dtype` among the first n of the scratch that
 * is NaN or ±Infinity as float32 (for f64: also finite values that overflow float32), or -1.
 */
export function firstNonFinite(s: Scratch, dtype: DType, n: number): number {
  switch (dtype) {
    case 'f32':
      return firstNonFiniteF32(s.u32, n);
    case 'f16': {
      const a = s.u16;
      for (let i = 0; i < n; i++) if ((a[i]! & 0x7c00) === 0x7c00) return i;
      return -1;
    }
    case 'bf16': {
      const a = s.u16;
      for (let i = 0; i < n; i++) if ((a[i]! & 0x7f80) === 0x7f80) return i;
      return -1;
    }
    case 'f64': {
      const a = s.f64;
      for (let i = 0; i < n; i++) {
        const y = Math.fround(a[i]!);
        if (y - y !== 0) return i;
      }
      return -1;
    }
  }
}
