/**
 * Output dtypes (`--out-dtype`): createTensorWriter writes f16 and bf16 by positional runs, on every
 * write path (contiguous, gathered spans, one run at a time). float16 bits are compared with
 * numpy's own conversion, bfloat16 bits with a conversion written from the definition in the test.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { InputError, createTensorWriter, readTensor, type OutDType } from '@longattn/tensor';
import { bf16FromDefinition } from '../../../test/support/bf16.ts';
import { runNumpy } from '../../../test/support/numpy.ts';
import { randomTensor } from '../../../test/support/random.ts';
import { bytes, tempDir } from './helpers.ts';

/** Values that test rounding: random magnitudes 1e-9…1e5, exact f16/bf16 ties, subnormals, overflow. */
function hardValues(n: number): Float32Array {
  const special = [
    0,
    -0,
    1,
    -1,
    1 + 2 ** -11, // f16 tie, rounds to even (down)
    1 + 3 * 2 ** -11, // f16 tie, rounds to even (up)
    1 + 2 ** -8, // bf16 tie (down)
    1 + 3 * 2 ** -8, // bf16 tie (up)
    65504, // largest f16
    65519.99, // rounds down to 65504
    65520, // rounds to Infinity in f16
    2 ** -24, // smallest f16 subnormal
    1.5 * 2 ** -24, // f16 subnormal tie
    2 ** -25, // f16 tie with 0 (→ 0)
    2 ** -25 + 2 ** -40, // just above: → smallest subnormal
    6.1e-5, // near the f16 normal boundary
    3.3895314e38, // largest bf16
    3.4028235e38, // largest f32: rounds to Infinity in bf16
    Infinity,
    -Infinity,
    1e-40, // f32 subnormal
  ];
  const out = randomTensor(n, 77);
  const scales = randomTensor(n, 78);
  for (let i = 0; i < n; i++) out[i] = out[i]! * 10 ** Math.round(scales[i]! * 4 - 2);
  out.set(special.slice(0, n));
  return out;
}

/** Writes `data` [A, B, C] into a new tensor of `dtype` as runs that take the path `how` asks for. */
function writeBy(file: string, shape: [number, number, number], data: Float32Array, dtype: OutDType, how: 'whole' | 'gather' | 'runs') {
  const w = createTensorWriter(file, shape, { dtype });
  const [A, B, C] = shape;
  if (how === 'whole') {
    w.writeRuns(0, data, C, C);
  } else {
    // column blocks of width C/… across rows: stride B·C when gathering [A] runs, C otherwise
    const width = how === 'gather' ? C : 100;
    for (let first = 0; first < B * C; first += width) {
      const runs = new Float32Array(A * width);
      for (let a = 0; a < A; a++) runs.set(data.subarray(a * B * C + first, a * B * C + first + width), a * width);
      w.writeRuns(first, runs, B * C, width);
    }
  }
  w.commit();
}

const NUMPY_F16 = `
import sys, numpy as np
want = np.fromfile(sys.argv[1], dtype='<f4').astype(np.float16)
got = np.load(sys.argv[2])
assert got.dtype == np.float16, got.dtype
assert got.shape == tuple(int(x) for x in sys.argv[3].split(',')), got.shape
assert got.reshape(-1).tobytes() == want.tobytes(), np.nonzero(got.reshape(-1).view(np.uint16) != want.view(np.uint16))[0][:10]
print('ok')
`;

// gather: [A=7, B=5, C=9] runs of 9 every 45 (gaps of 72 bytes, one span); runs: [3, 90, 100]
// written as runs of 100 every 9000 elements (gaps of ~18 KB > GATHER_GAP_MAX: one write per run).
const SHAPES: Record<'whole' | 'gather' | 'runs', [number, number, number]> = {
  whole: [4, 6, 50],
  gather: [7, 5, 9],
  runs: [3, 90, 100],
};

for (const how of ['whole', 'gather', 'runs'] as const) {
  test(`f16 .npy written by ${how} runs: numpy's float16 conversion, bit for bit`, (t) => {
    const dir = tempDir(t);
    const shape = SHAPES[how];
    const data = hardValues(shape[0] * shape[1] * shape[2]);
    fs.writeFileSync(path.join(dir, 'want.bin'), bytes(data));
    writeBy(path.join(dir, 'o.npy'), shape, data, 'f16', how);
    t.is(runNumpy(NUMPY_F16, [path.join(dir, 'want.bin'), path.join(dir, 'o.npy'), shape.join(',')]).trim(), 'ok');
    t.deepEqual(fs.readdirSync(dir).sort(), ['o.npy', 'want.bin'], 'no temporary file left');
  });

  test(`bf16 .safetensors written by ${how} runs: round to nearest even, bit for bit`, (t) => {
    const dir = tempDir(t);
    const shape = SHAPES[how];
    const data = hardValues(shape[0] * shape[1] * shape[2]);
    const file = path.join(dir, 'o.safetensors');
    writeBy(file, shape, data, 'bf16', how);
    const raw = fs.readFileSync(file);
    const headerLength = Number(raw.readBigUInt64LE(0));
    const header = JSON.parse(raw.subarray(8, 8 + headerLength).toString('utf8')) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: number[] }
    >;
    t.deepEqual(header.out, { dtype: 'BF16', shape, data_offsets: [0, data.length * 2] });
    const got = new Uint16Array(raw.buffer.slice(raw.byteOffset + 8 + headerLength, raw.byteOffset + raw.length));
    const want = Uint16Array.from(data, bf16FromDefinition);
    const bad = [...got.keys()].filter((i) => got[i] !== want[i]);
    t.deepEqual(
      bad.slice(0, 5).map((i) => [data[i], got[i], want[i]]),
      [],
      `${bad.length} elements differ`,
    );
    const back = readTensor(file);
    t.is(back.dtype, 'bf16');
  });
}

test('f16 .safetensors: numpy reads the F16 tensor as its own float16 conversion', (t) => {
  const dir = tempDir(t);
  const data = hardValues(2 * 3 * 41);
  fs.writeFileSync(path.join(dir, 'want.bin'), bytes(data));
  writeBy(path.join(dir, 'o.safetensors'), [2, 3, 41], data, 'f16', 'gather');
  const script = `
import sys, json, struct, numpy as np
raw = open(sys.argv[2], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])['out']
assert h['dtype'] == 'F16' and h['shape'] == [2, 3, 41], h
a, b = h['data_offsets']
got = np.frombuffer(raw[8 + n + a:8 + n + b], dtype='<f2')
want = np.fromfile(sys.argv[1], dtype='<f4').astype(np.float16)
assert got.tobytes() == want.tobytes()
print('ok')
`;
  t.is(runNumpy(script, [path.join(dir, 'want.bin'), path.join(dir, 'o.safetensors')]).trim(), 'ok');
});

test('bf16 with an .npy path: InputError naming --out-dtype, no file; an unknown dtype likewise', (t) => {
  const dir = tempDir(t);
  t.throws(() => createTensorWriter(path.join(dir, 'o.npy'), [2, 3], { dtype: 'bf16' }), {
    instanceOf: InputError,
    message: /^--out-dtype: \.npy has no bfloat16/,
  });
  t.throws(() => createTensorWriter(path.join(dir, 'o.npy'), [2, 3], { dtype: 'f64' as OutDType }), {
    instanceOf: InputError,
    message: '--out-dtype: expected f32, f16 or bf16, got "f64"',
  });
  t.deepEqual(fs.readdirSync(dir), []);
});

test('the test’s own bf16 conversion agrees with hand-worked values', (t) => {
  // 1 + 2^-8 is halfway between 1 (0x3f80) and 1 + 2^-7 (0x3f81): ties to even → 0x3f80.
  t.is(bf16FromDefinition(1 + 2 ** -8), 0x3f80);
  t.is(bf16FromDefinition(1 + 3 * 2 ** -8), 0x3f82);
  t.is(bf16FromDefinition(-(1 + 2 ** -8 + 2 ** -20)), 0xbf81);
  t.is(bf16FromDefinition(3.4028235e38), 0x7f80);
  t.is(bf16FromDefinition(-Infinity), 0xff80);
  t.is(bf16FromDefinition(-0), 0x8000);
});
