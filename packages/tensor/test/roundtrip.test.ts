import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { f16ToF32, f32ToBf16, bf16ToF32, f32ToF16, openTensor, readTensor, writeSafetensors, writeTensor } from '@longattn/tensor';
import type { DType } from '@longattn/tensor';
import { firstDifference, ramp, tempDir } from './helpers.ts';

/** What a value becomes after a trip through `dtype`. */
function quantise(x: number, dtype: DType): number {
  if (dtype === 'f16') return f16ToF32(f32ToF16(x));
  if (dtype === 'bf16') return bf16ToF32(f32ToBf16(x));
  return Math.fround(x);
}

/** Odd values (not exact in half precision) so that rounding is exercised. */
function odd(n: number): Float32Array {
  return Float32Array.from(ramp(n, 7), (x, i) => x * 1.2345 + i * 1e-3);
}

const cases: [string, DType][] = [
  ['npy', 'f32'],
  ['npy', 'f16'],
  ['npy', 'f64'],
  ['safetensors', 'f32'],
  ['safetensors', 'f16'],
  ['safetensors', 'bf16'],
  ['safetensors', 'f64'],
];

for (const [ext, dtype] of cases) {
  test(`round trip .${ext} ${dtype}`, (t) => {
    const dir = tempDir(t);
    const shape = [3, 5, 7];
    const data = odd(105);
    const file = path.join(dir, `x.${ext}`);
    writeTensor(file, shape, data, { dtype });
    const got = readTensor(file, '--q');
    t.deepEqual(got.shape, shape);
    t.is(got.dtype, dtype);
    t.deepEqual(
      Array.from(got.data),
      Array.from(data, (x) => quantise(x, dtype)),
    );
    t.deepEqual(fs.readdirSync(dir), [`x.${ext}`], 'no temporary file is left');
  });
}

test('f64 data keeps float64 in the file and reads back rounded to float32', (t) => {
  const dir = tempDir(t);
  const data = Float64Array.from({ length: 6 }, (_, i) => Math.PI * (i + 1));
  writeTensor(path.join(dir, 'd.npy'), [2, 3], data, { dtype: 'f64' });
  t.is(fs.statSync(path.join(dir, 'd.npy')).size, 128 + 48);
  t.deepEqual(Array.from(readTensor(path.join(dir, 'd.npy')).data), Array.from(data, Math.fround));
});

test('scalars, vectors and zero-length dims round trip with their shape as-is', (t) => {
  const dir = tempDir(t);
  for (const shape of [[], [5], [0], [4, 0, 3]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    for (const ext of ['npy', 'safetensors']) {
      const file = path.join(dir, `s${shape.length}-${n}.${ext}`);
      writeTensor(file, shape, ramp(n));
      const reader = openTensor(file);
      t.deepEqual(reader.shape, shape);
      t.is(reader.length, n);
      t.deepEqual(Array.from(reader.readAll()), Array.from(ramp(n)));
      t.is(reader.findNonFinite(), -1);
      reader.close();
    }
  }
});

test('a multi-tensor safetensors file is read by #name, with every dtype', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'qkv.safetensors');
  const q = odd(24);
  const k = ramp(10);
  const v = ramp(9, 3);
  writeSafetensors(file, {
    q: { shape: [2, 3, 4], data: q },
    'model.layers.0.k': { shape: [10], data: k, dtype: 'f16' },
    v: { shape: [3, 3], data: v, dtype: 'bf16' },
  });
  t.deepEqual(Array.from(readTensor(`${file}#q`).data), Array.from(q));
  const rk = readTensor(`${file}#model.layers.0.k`);
  t.is(rk.dtype, 'f16');
  t.deepEqual(
    Array.from(rk.data),
    Array.from(k, (x) => quantise(x, 'f16')),
  );
  const rv = readTensor(`${file}#v`);
  t.is(rv.dtype, 'bf16');
  t.deepEqual(rv.shape, [3, 3]);
  t.deepEqual(
    Array.from(rv.data),
    Array.from(v, (x) => quantise(x, 'bf16')),
  );
  // the data starts 8-byte aligned, as the safetensors library writes it
  const headerLength = Number(fs.readFileSync(file).readBigUInt64LE(0));
  t.is((8 + headerLength) % 8, 0);
});

/** readRuns against slicing readAll, for a [B, S, H, D] (bshd) tensor read one head at a time. */
for (const dtype of ['f32', 'f16', 'bf16', 'f64'] as const) {
  test(`readRuns with bshd strides matches readAll (${dtype})`, (t) => {
    const dir = tempDir(t);
    const [B, S, H, D] = [2, 37, 3, 5];
    const data = odd(B * S * H * D);
    const file = path.join(dir, dtype === 'bf16' ? 'x.safetensors' : 'x.npy');
    writeTensor(file, [B, S, H, D], data, { dtype });
    const reader = openTensor(file, '--k');
    const all = reader.readAll();
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (const [s0, rows] of [
          [0, S],
          [5, 13],
          [36, 1],
          [10, 0],
        ] as const) {
          const first = ((b * S + s0) * H + h) * D;
          const got = reader.readRuns(first, rows, H * D, D);
          const want: number[] = [];
          for (let s = s0; s < s0 + rows; s++) want.push(...all.subarray(((b * S + s) * H + h) * D, ((b * S + s) * H + h + 1) * D));
          t.deepEqual(Array.from(got), want, `b=${b} h=${h} rows ${s0}+${rows}`);
        }
      }
    }
    // contiguous block (stride === width) into a caller's array, at an offset inside it
    const into = new Float32Array(4 + 7 * H * D).fill(-9);
    reader.readRuns(3 * H * D, 7, H * D, H * D, into.subarray(4));
    t.deepEqual(Array.from(into.subarray(0, 4)), [-9, -9, -9, -9]);
    t.deepEqual(Array.from(into.subarray(4)), Array.from(all.subarray(3 * H * D, 10 * H * D)));
    // overlapping and repeated runs (stride < width, stride 0)
    t.deepEqual(
      Array.from(reader.readRuns(2, 3, 1, 4)),
      [2, 3, 4, 5, 3, 4, 5, 6, 4, 5, 6, 7].map((i) => all[i]!),
    );
    t.deepEqual(
      Array.from(reader.readRuns(6, 3, 0, 2)),
      [6, 7, 6, 7, 6, 7].map((i) => all[i]!),
    );
    t.throws(() => reader.readRuns(all.length - 3, 1, 1, 4), { instanceOf: RangeError });
    t.throws(() => reader.readRuns(0, 2, 1, 2, new Float32Array(3)), { instanceOf: RangeError });
    reader.close();
    t.throws(() => reader.readRuns(0, 1, 1, 1), { message: /closed/ });
  });
}

test('readRuns with gaps wider than the gather limit (read run by run) and across scratch chunks', (t) => {
  const dir = tempDir(t);
  // [S, H, D] = [40, 600, 16]: a head's rows are 600·16 elements apart (> 16 KB of gap)
  const shape = [40, 600, 16];
  const data = odd(40 * 600 * 16);
  for (const dtype of ['f32', 'f16'] as const) {
    const file = path.join(dir, `wide-${dtype}.npy`);
    writeTensor(file, shape, data, { dtype });
    const reader = openTensor(file);
    const all = reader.readAll();
    const got = reader.readRuns(7 * 16, 40, 600 * 16, 16);
    const want = new Float32Array(40 * 16);
    for (let s = 0; s < 40; s++) want.set(all.subarray((s * 600 + 7) * 16, (s * 600 + 8) * 16), s * 16);
    t.deepEqual(Array.from(got), Array.from(want));
    reader.close();
  }
  // a tensor larger than the 8 MB scratch: 3M f16 elements (6 MB) and 1.5M f64 (12 MB)
  const big = Float32Array.from({ length: 3 << 20 }, (_, i) => (i % 2048) - 1024);
  const f16 = path.join(dir, 'big16.npy');
  writeTensor(f16, [3 << 20], big, { dtype: 'f16' });
  t.is(firstDifference(readTensor(f16).data, big), -1);
  const f64 = path.join(dir, 'big64.npy');
  const big64 = big.subarray(0, 1_500_000);
  writeTensor(f64, [3, 500_000], big64, { dtype: 'f64' });
  const r64 = openTensor(f64);
  t.is(firstDifference(r64.readAll(), big64), -1);
  // runs of one column across both rows: gathered span is > 8 MB, so it goes in loads
  t.deepEqual(
    Array.from(r64.readRuns(123, 3, 500_000, 2)),
    [123, 124, 500_123, 500_124, 1_000_123, 1_000_124].map((i) => big64[i]!),
  );
  r64.close();
});

for (const dtype of ['f32', 'f16', 'bf16', 'f64'] as const) {
  test(`findNonFinite reports the first NaN/Inf (${dtype})`, (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'x.safetensors');
    const data = ramp(50_000);
    writeTensor(file, [50_000], data, { dtype });
    t.is(openTensor(file).findNonFinite(), -1);
    for (const [at, bad] of [
      [49_999, NaN],
      [31_337, Infinity],
      [0, -Infinity],
    ] as const) {
      data[at] = bad;
      writeTensor(file, [50_000], data, { dtype });
      const r = openTensor(file);
      t.is(r.findNonFinite(), at, `${bad} at ${at}`);
      r.close();
    }
  });
}

test('findNonFinite on f64 flags values that overflow float32, and scans past 8 MB chunks', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'x.npy');
  const data = new Float64Array(1_200_000).fill(1e38);
  writeTensor(file, [data.length], data, { dtype: 'f64' });
  t.is(openTensor(file).findNonFinite(), -1);
  data[1_100_000] = 1e39; // finite in float64, Infinity in float32
  writeTensor(file, [data.length], data, { dtype: 'f64' });
  t.is(openTensor(file).findNonFinite(), 1_100_000);
});
