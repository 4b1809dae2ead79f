/**
 * Cross-check with numpy: numpy loads what we write (values and header bytes equal to np.save's)
 * and we load what numpy writes (versions 1.0–3.0). Needs a python3 with numpy (test/support/numpy.ts
 * finds it); without one the test fails, naming what to install.
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { InputError, f16ToF32, f32ToF16, readTensor, writeTensor } from '@longattn/tensor';
import type { DType } from '@longattn/tensor';
import { runNumpy } from '../../../test/support/numpy.ts';
import { bytes, ramp, tempDir } from './helpers.ts';

/** Each case: our file and the raw float32 values (`.bin`) numpy compares it with. */
const SCRIPT = `
import io, json, sys
import numpy as np
dir, cases = sys.argv[1], json.loads(sys.argv[2])
for c in cases:
    want = np.fromfile(f"{dir}/{c['name']}.bin", dtype='<f4').reshape(c['shape']).astype({'f32': '<f4', 'f16': '<f2', 'f64': '<f8'}[c['dtype']])
    ours = f"{dir}/{c['name']}.npy"
    got = np.load(ours)
    assert got.dtype == want.dtype and got.shape == want.shape, (c, got.dtype, got.shape)
    assert got.tobytes() == want.tobytes(), ("values differ", c)
    buf = io.BytesIO(); np.save(buf, want)
    assert buf.getvalue() == open(ours, 'rb').read(), ("file bytes differ from np.save", c)
# files numpy writes for us
base = np.fromfile(f"{dir}/base.bin", dtype='<f4')
np.save(f"{dir}/np-f4.npy", base.reshape(6, 5, 4))
np.save(f"{dir}/np-f2.npy", base.reshape(120).astype(np.float16))
np.save(f"{dir}/np-f8.npy", base.reshape(2, 60).astype(np.float64))
np.save(f"{dir}/np-scalar.npy", np.float32(3.5))
np.save(f"{dir}/np-empty.npy", np.zeros((0, 7), np.float32))
for v in [(1, 0), (2, 0), (3, 0)]:
    with open(f"{dir}/np-v{v[0]}.npy", 'wb') as f:
        np.lib.format.write_array(f, base.reshape(10, 12), version=v)
np.save(f"{dir}/np-fortran.npy", np.asfortranarray(base.reshape(10, 12)))
np.save(f"{dir}/np-big-endian.npy", base.astype('>f4'))
np.save(f"{dir}/np-int.npy", np.arange(4, dtype=np.int32))
np.save(f"{dir}/np-complex.npy", np.zeros(3, np.complex64))
print("ok")
`;

test('numpy loads our .npy files and we load numpy’s', (t) => {
  const dir = tempDir(t);
  const cases: { name: string; shape: number[]; dtype: DType }[] = [
    { name: 'f32', shape: [3, 5, 7], dtype: 'f32' },
    { name: 'f64', shape: [4], dtype: 'f64' },
    { name: 'f16', shape: [2, 3, 50], dtype: 'f16' },
    { name: 'scalar', shape: [], dtype: 'f32' },
    { name: 'empty', shape: [0, 3], dtype: 'f32' },
    { name: 'long', shape: [123456789, 0, 2], dtype: 'f32' },
  ];
  for (const c of cases) {
    const n = c.shape.reduce((a, b) => a * b, 1);
    // values that are not exact in float16, so that numpy's rounding is compared with ours
    const data = Float32Array.from(ramp(n, 5), (x, i) => x * 1.337 + i * 0.01 + 1e-7);
    fs.writeFileSync(path.join(dir, `${c.name}.bin`), bytes(data));
    writeTensor(path.join(dir, `${c.name}.npy`), c.shape, data, { dtype: c.dtype });
  }
  const base = Float32Array.from(ramp(120, 9), (x) => x * 3.1);
  fs.writeFileSync(path.join(dir, 'base.bin'), bytes(base));

  t.is(runNumpy(SCRIPT, [dir, JSON.stringify(cases)]).trim(), 'ok');

  const read = (name: string) => readTensor(path.join(dir, `${name}.npy`), '--q');
  const f4 = read('np-f4');
  t.deepEqual([f4.shape, f4.dtype], [[6, 5, 4], 'f32']);
  t.deepEqual(Array.from(f4.data), Array.from(base));
  const f2 = read('np-f2');
  t.is(f2.dtype, 'f16');
  t.deepEqual(
    Array.from(f2.data),
    Array.from(base, (x) => f16ToF32(f32ToF16(x))),
    'numpy and we round float16 alike',
  );
  const f8 = read('np-f8');
  t.deepEqual([f8.shape, f8.dtype], [[2, 60], 'f64']);
  t.deepEqual(Array.from(f8.data), Array.from(base));
  t.deepEqual([read('np-scalar').shape, Array.from(read('np-scalar').data)], [[], [3.5]]);
  t.deepEqual(read('np-empty').shape, [0, 7]);
  for (const v of [1, 2, 3]) {
    const got = read(`np-v${v}`);
    t.is(fs.readFileSync(path.join(dir, `np-v${v}.npy`))[6], v, `numpy wrote version ${v}.0`);
    t.deepEqual(got.shape, [10, 12]);
    t.deepEqual(Array.from(got.data), Array.from(base));
  }
  for (const [name, pattern] of [
    ['np-fortran', /fortran_order True/],
    ['np-big-endian', /">f4" \(big-endian\)/],
    ['np-int', /"<i4" is not supported/],
    ['np-complex', /"<c8" is not supported/],
  ] as const) {
    t.throws(() => read(name), { instanceOf: InputError, message: pattern }, name);
  }
});
