import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { InputError, createTensorWriter, openTensor, readTensor, writeTensor } from '@longattn/tensor';
import { firstDifference, ramp, tempDir } from './helpers.ts';

for (const ext of ['npy', 'safetensors']) {
  test(`writer fills a [S, H, D] .${ext} head by head and commits atomically`, (t) => {
    const dir = tempDir(t);
    const out = path.join(dir, `o.${ext}`);
    const [S, H, D] = [11, 3, 4];
    const data = ramp(S * H * D);
    const w = createTensorWriter(out, [S, H, D], { name: 'o' });
    t.is(w.path, out);
    t.deepEqual(w.shape, [S, H, D]);
    t.false(fs.existsSync(out), 'nothing at the path before commit');
    const temp = fs.readdirSync(dir);
    t.is(temp.length, 1);
    t.regex(temp[0]!, new RegExp(`^o\\.${ext}\\.pending-${process.pid}-[0-9a-f]+$`));
    const expectedSize = ext === 'npy' ? 128 + S * H * D * 4 : undefined;
    if (expectedSize !== undefined) t.is(fs.statSync(path.join(dir, temp[0]!)).size, expectedSize, 'preallocated');
    for (let h = H - 1; h >= 0; h--) {
      const head = new Float32Array(S * D);
      for (let s = 0; s < S; s++) head.set(data.subarray((s * H + h) * D, (s * H + h + 1) * D), s * D);
      w.writeRuns(h * D, head, H * D, D);
    }
    t.throws(() => w.writeRuns(0, new Float32Array(8), H * D, 3), { instanceOf: RangeError });
    t.throws(() => w.writeRuns(S * H * D - 2, new Float32Array(4), 4, 4), { instanceOf: RangeError });
    w.commit();
    t.deepEqual(fs.readdirSync(dir), [`o.${ext}`]);
    const got = readTensor(ext === 'npy' ? out : `${out}#o`);
    t.deepEqual(got.shape, [S, H, D]);
    t.deepEqual(Array.from(got.data), Array.from(data));
    w.abort(); // after commit: harmless, keeps the output
    t.true(fs.existsSync(out));
  });
}

test('strided writes with wide gaps (run by run) and spans over the 8 MB scratch (in loads)', (t) => {
  const dir = tempDir(t);
  for (const [S, H, D] of [
    [5, 1100, 4],
    [3000, 8, 128],
  ] as const) {
    const out = path.join(dir, `o-${H}.npy`);
    const data = ramp(S * H * D, H);
    const w = createTensorWriter(out, [S, H, D]);
    for (const h of [1, 0, ...Array.from({ length: H - 2 }, (_, i) => i + 2)]) {
      const head = new Float32Array(S * D);
      for (let s = 0; s < S; s++) head.set(data.subarray((s * H + h) * D, (s * H + h + 1) * D), s * D);
      w.writeRuns(h * D, head, H * D, D);
    }
    w.commit();
    t.is(firstDifference(readTensor(out).data, data), -1, `[${S}, ${H}, ${D}]`);
  }
});

test('abort leaves nothing behind, not even an older file is touched', (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'o.npy');
  writeTensor(out, [2], new Float32Array([1, 2]));
  const w = createTensorWriter(out, [1000, 64]);
  w.writeRuns(0, ramp(64 * 10), 64, 64);
  w.abort();
  w.abort();
  t.deepEqual(fs.readdirSync(dir), ['o.npy']);
  t.deepEqual(Array.from(readTensor(out).data), [1, 2], 'the previous output is untouched');
  t.throws(() => w.writeRuns(0, new Float32Array(64), 64, 64), { message: /aborted/ });
  t.throws(() => w.commit(), { message: /aborted/ });

  const fresh = path.join(dir, 'fresh.safetensors');
  const w2 = createTensorWriter(fresh, [4]);
  w2.abort();
  t.deepEqual(fs.readdirSync(dir), ['o.npy']);
});

test('commit replaces an existing output; unwritten elements read as zero', (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'o.npy');
  writeTensor(out, [2], new Float32Array([1, 2]));
  const w = createTensorWriter(out, [2, 3]);
  w.writeRuns(3, new Float32Array([7, 8, 9]), 3, 3);
  w.commit();
  t.throws(() => w.commit(), { message: /committed/ });
  const got = openTensor(out);
  t.deepEqual(got.shape, [2, 3]);
  t.deepEqual(Array.from(got.readAll()), [0, 0, 0, 7, 8, 9]);
  got.close();
});

test('a missing directory or a bad extension is an InputError naming the argument', (t) => {
  const dir = tempDir(t);
  const err = t.throws(() => createTensorWriter(path.join(dir, 'no', 'o.npy'), [2]), { instanceOf: InputError });
  t.is(err?.message, `--out: directory ${JSON.stringify(path.join(dir, 'no'))} does not exist`);
  t.throws(() => createTensorWriter(path.join(dir, 'no', 'l.npy'), [2], { argument: '--lse' }), {
    instanceOf: InputError,
    message: /^--lse: directory/,
  });
  t.throws(() => createTensorWriter(path.join(dir, 'o.txt'), [2]), {
    instanceOf: InputError,
    message: /^--out: expected an output path ending in \.npy or \.safetensors/,
  });
  fs.writeFileSync(path.join(dir, 'file'), '');
  t.throws(() => createTensorWriter(path.join(dir, 'file', 'o.npy'), [2]), { instanceOf: InputError, message: /does not exist/ });
  fs.mkdirSync(path.join(dir, 'd.npy'));
  t.throws(() => createTensorWriter(path.join(dir, 'd.npy'), [2]), { instanceOf: InputError, message: /is a directory/ });
  t.throws(() => writeTensor(path.join(dir, 'no', 'x.npy'), [1], new Float32Array(1)), { instanceOf: InputError });
  t.deepEqual(fs.readdirSync(dir).sort(), ['d.npy', 'file']);
});

test('writeTensor checks the data length and refuses bfloat16 in .npy', (t) => {
  const dir = tempDir(t);
  t.throws(() => writeTensor(path.join(dir, 'x.npy'), [2, 2], new Float32Array(3)), { instanceOf: RangeError });
  t.throws(() => writeTensor(path.join(dir, 'x.npy'), [2], new Float32Array(2), { dtype: 'bf16' }), {
    instanceOf: RangeError,
    message: /bfloat16/,
  });
  t.deepEqual(fs.readdirSync(dir), []);
});
