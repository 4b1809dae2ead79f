import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { openTensor, readTensor } from '@longattn/tensor';
import { bytes, rawNpy, tempDir } from './helpers.ts';

const data = Float32Array.from({ length: 12 }, (_, i) => i - 5.5);

for (const major of [1, 2, 3]) {
  test(`.npy version ${major}.0 header is read`, (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'v.npy');
    fs.writeFileSync(file, rawNpy(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }\n", bytes(data)));
    const got = readTensor(file, '--q');
    t.deepEqual(got.shape, [3, 4]);
    t.is(got.dtype, 'f32');
    t.deepEqual(Array.from(got.data), Array.from(data));
  });
}

test('.npy version 3.0 header is utf8 (a non-latin1 key, refused as numpy does, named as decoded)', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'v3.npy');
  fs.writeFileSync(file, rawNpy(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (12,), '\u2603': 1}   \n", bytes(data), 'utf8'));
  // decoded as latin1 the key would read "â\x98\x83"; numpy refuses any key but the three
  t.throws(() => readTensor(file, '--q'), { message: /^--q: .*header has an unexpected key "\u2603"/ });
});

test('header dict variants numpy and Python 2 wrote are parsed', (t) => {
  const dir = tempDir(t);
  const variants: [string, number[]][] = [
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (12,), }", [12]],
    ['{"descr": "<f4", "fortran_order": False, "shape": (2, 6)}', [2, 6]],
    ["{'shape': (3L, 4L), 'fortran_order': False, 'descr': 'f4'}", [3, 4]],
    ["{'descr':'=f4','fortran_order':False,'shape':(2,2,3,)}", [2, 2, 3]],
    ["{'descr': '<f4', 'fortran_order': True, 'shape': (12,), }", [12]],
    ["{'descr': '<f4', 'fortran_order': True, 'shape': (1, 12, 1), }", [1, 12, 1]],
    ["{'descr': '|f4', 'fortran_order': False, 'shape': (12,)}", [12]],
    ["  {'descr': '<f4',\n 'fortran_order': False, 'shape': [4, 3] }  \n", [4, 3]],
  ];
  for (const [header, shape] of variants) {
    const file = path.join(dir, 'h.npy');
    fs.writeFileSync(file, rawNpy(1, header, bytes(data)));
    const got = readTensor(file);
    t.deepEqual(got.shape, shape, header);
    t.deepEqual(Array.from(got.data), Array.from(data), header);
  }
});

test('scalar shape () and f2/f8 descrs', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 's.npy');
  fs.writeFileSync(file, rawNpy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }\n", bytes(new Float64Array([2.5]))));
  const r = openTensor(file);
  t.deepEqual(r.shape, []);
  t.is(r.length, 1);
  t.is(r.dtype, 'f64');
  t.deepEqual(Array.from(r.readAll()), [2.5]);
  r.close();
  fs.writeFileSync(
    file,
    rawNpy(2, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }\n", bytes(new Uint16Array([0x3c00, 0xc000]))),
  );
  t.deepEqual(Array.from(readTensor(file).data), [1, -2]);
});
