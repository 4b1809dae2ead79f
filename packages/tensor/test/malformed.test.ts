import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { InputError, openTensor, readTensor, writeSafetensors, writeTensor } from '@longattn/tensor';
import { bytes, rawNpy, rawSafetensors, tempDir } from './helpers.ts';

const f32x12 = bytes(new Float32Array(12).fill(1));
const HEADER = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }\n";

/** Opening `ref` must throw an InputError for `--q`, one line, matching `pattern`. */
function refused(t: import('ava').ExecutionContext, ref: string, pattern: RegExp): void {
  const err = t.throws(() => openTensor(ref, '--q'), { instanceOf: InputError });
  if (err === undefined) return;
  t.is(err.argument, '--q');
  t.true(err.message.startsWith('--q: '), err.message);
  t.false(err.message.includes('\n'), `one line: ${err.message}`);
  t.regex(err.message, pattern);
}

test('missing file, directory and unknown extension', (t) => {
  const dir = tempDir(t);
  const missing = path.join(dir, 'x.npy');
  const err = t.throws(() => openTensor(missing, '--q'), { instanceOf: InputError });
  t.is(err?.message, `--q: cannot read ${JSON.stringify(missing)}: no such file`);
  refused(t, path.join(dir, 'nothere.safetensors#q'), /cannot read ".*nothere\.safetensors": no such file/);
  fs.mkdirSync(path.join(dir, 'd.npy'));
  refused(t, path.join(dir, 'd.npy'), /is a directory/);
  refused(t, path.join(dir, 'x.bin'), /expected a \.npy file or file\.safetensors\[#name\], got/);
  refused(t, `${missing}#name`, /expected a \.npy file/);
  t.throws(() => readTensor(missing), { instanceOf: InputError, message: /^.*x\.npy: cannot read/ }, 'argument defaults to the ref');
});

const npyCases: [string, Uint8Array, RegExp][] = [
  ['empty file', new Uint8Array(0), /empty file/],
  ['bad magic', Buffer.from('PK\x03\x04 this is a zip file', 'latin1'), /not an \.npy file \(bad magic "PK/],
  ['truncated prefix', Buffer.from('\x93NUMPY\x01', 'latin1'), /unsupported \.npy format version \(truncated\)/],
  ['truncated length', Buffer.from('\x93NUMPY\x02\x00\x10', 'latin1'), /truncated header/],
  ['bad version', rawNpy(4, HEADER, f32x12), /unsupported \.npy format version 4\.0; expected 1\.0, 2\.0 or 3\.0/],
  ['truncated header', rawNpy(1, HEADER, f32x12).subarray(0, 30), /truncated header: it says 60 bytes/],
  [
    'header cap',
    Buffer.concat([rawNpy(2, HEADER, f32x12).subarray(0, 8), Buffer.from([0, 0, 0, 0x40])]),
    /header length 1073741824 exceeds/,
  ],
  ['garbage header', rawNpy(1, 'hello, world\n', f32x12), /header is not a Python dict literal .*"hello, world"/],
  ['not a dict', rawNpy(1, '(3, 4)\n', f32x12), /header is not a dict/],
  ['missing key', rawNpy(1, "{'descr': '<f4', 'shape': (3, 4)}\n", f32x12), /header lacks 'fortran_order'/],
  [
    'big-endian',
    rawNpy(1, HEADER.replace('<f4', '>f4'), f32x12),
    /dtype ">f4" \(big-endian\) is not supported; expected '<f4', '<f2' or '<f8'/,
  ],
  ['int dtype', rawNpy(1, HEADER.replace('<f4', '<i4'), f32x12), /dtype "<i4" is not supported/],
  ['complex dtype', rawNpy(1, HEADER.replace('<f4', '<c8'), f32x12), /dtype "<c8" is not supported/],
  ['object dtype', rawNpy(1, HEADER.replace('<f4', '|O'), f32x12), /dtype "\|O" is not supported/],
  ['structured dtype', rawNpy(1, HEADER.replace("'<f4'", "[('a', '<f4')]"), f32x12), /\[\["a","<f4"\]\] \(structured\) is not supported/],
  ['fortran order', rawNpy(1, HEADER.replace('False', 'True'), f32x12), /fortran_order True \(column-major\) is not supported/],
  ['bad shape', rawNpy(1, HEADER.replace('(3, 4)', '(3, -4)'), f32x12), /shape \[3,-4\] is not a tuple of non-negative integers/],
  ['shape not a tuple', rawNpy(1, HEADER.replace('(3, 4)', '(12)'), f32x12), /shape 12 is not a tuple/],
  [
    'truncated data',
    rawNpy(1, HEADER, f32x12.subarray(0, 47)),
    /truncated data: shape \[3, 4\] of float32 needs 48 data bytes, the file has 47/,
  ],
  [
    'size mismatch',
    rawNpy(1, HEADER.replace('(3, 4)', '(3, 3)'), f32x12),
    /size mismatch: shape \[3, 3\] of float32 needs 36 data bytes, the file has 48/,
  ],
  ['v3 header not utf8', rawNpy(3, HEADER.replace('}', "'\xff': 1}"), f32x12), /header is not valid utf-8/],
];

for (const [name, content, pattern] of npyCases) {
  test(`.npy ${name} → InputError naming the argument`, (t) => {
    const file = path.join(tempDir(t), 'q.npy');
    fs.writeFileSync(file, content);
    refused(t, file, pattern);
  });
}

const entry = { dtype: 'F32', shape: [3, 4], data_offsets: [0, 48] };
const stCases: [string, Uint8Array, RegExp][] = [
  ['truncated length', Buffer.from([1, 0, 0]), /truncated header: 3 bytes/],
  ['header beyond file', rawSafetensors({ q: entry }, f32x12).subarray(0, 40), /truncated header: it says \d+ bytes, the file has 32/],
  ['garbage header', rawSafetensors('{"q": nope', f32x12), /header is not valid JSON: "\{\\"q\\": nope/],
  ['header not utf8', rawSafetensors(Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1'), f32x12), /header is not valid JSON/],
  ['header not an object', rawSafetensors([1, 2], f32x12), /header is not a JSON object/],
  [
    'unknown dtype',
    rawSafetensors({ q: { ...entry, dtype: 'I32' } }, f32x12),
    /tensor "q" has dtype "I32"; expected F32, F16, BF16 or F64/,
  ],
  ['bad shape', rawSafetensors({ q: { ...entry, shape: [3, 'x'] } }, f32x12), /has shape \[3,"x"\]; expected a list/],
  ['bad offsets', rawSafetensors({ q: { ...entry, data_offsets: [48, 0] } }, f32x12), /data_offsets \[48,0\]; expected \[begin, end\]/],
  [
    'offsets beyond file',
    rawSafetensors({ q: { ...entry, data_offsets: [4, 52] } }, f32x12),
    /truncated data: tensor "q" ends at byte 52 of the data, the file has 48/,
  ],
  [
    'size mismatch',
    rawSafetensors({ q: { ...entry, shape: [4, 4] } }, f32x12),
    /size mismatch: tensor "q" of shape \[4, 4\] float32 needs 64 bytes, data_offsets span 48/,
  ],
  ['not an entry', rawSafetensors({ q: 5 }, f32x12), /tensor "q" is not an object/],
  ['no tensors', rawSafetensors({ __metadata__: { a: 'b' } }, f32x12), /holds 0 tensors, choose one with #name: none/],
  [
    'an .npy file in disguise',
    rawNpy(1, HEADER, f32x12),
    /header length \d+ exceeds the 100000000-byte cap \(not a \.safetensors file\?\)/,
  ],
];

for (const [name, content, pattern] of stCases) {
  test(`.safetensors ${name} → InputError naming the argument`, (t) => {
    const file = path.join(tempDir(t), 'q.safetensors');
    fs.writeFileSync(file, content);
    refused(t, file, pattern);
  });
}

test('#name missing or ambiguous in a multi-tensor file lists the available names', (t) => {
  const file = path.join(tempDir(t), 'qkv.safetensors');
  const data = new Float32Array(4);
  writeSafetensors(file, { q: { shape: [4], data }, k: { shape: [2, 2], data }, v: { shape: [4], data } });
  refused(t, file, /holds 3 tensors, choose one with #name: "q", "k", "v"/);
  refused(t, `${file}#o`, /has no tensor "o"; available: "q", "k", "v"/);
  t.deepEqual(openTensor(`${file}#k`, '--q').shape, [2, 2]);
});

test('a header length of 2^40 is refused before any allocation', (t) => {
  const file = path.join(tempDir(t), 'huge.safetensors');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(2n ** 40n);
  fs.writeFileSync(file, Buffer.concat([prefix, Buffer.from('{}')]));
  refused(t, file, /header length 1099511627776 exceeds the 100000000-byte cap/);
});

test('a header length under the cap but beyond the file is refused without allocating it', (t) => {
  const dir = tempDir(t);
  const st = path.join(dir, 'big.safetensors');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(90_000_000n);
  fs.writeFileSync(st, Buffer.concat([prefix, Buffer.from('{"q": {}}')]));
  const npy = path.join(dir, 'big.npy');
  fs.writeFileSync(npy, Buffer.concat([Buffer.from('\x93NUMPY\x02\x00', 'latin1'), Buffer.from([0, 0, 0x0f, 0]), Buffer.from('{}')]));
  const before = process.memoryUsage().arrayBuffers;
  refused(t, st, /truncated header: it says 90000000 bytes, the file has 9 after the length/);
  refused(t, npy, /truncated header: it says 983040 bytes, the file has 2 after the prefix/);
  const grown = process.memoryUsage().arrayBuffers - before;
  t.true(grown < 1_000_000, `array buffers grew by ${grown} bytes`);
});

test('a file that shrinks after opening fails with an InputError on read', (t) => {
  const file = path.join(tempDir(t), 'q.npy');
  writeTensor(file, [3, 4], new Float32Array(12));
  const reader = openTensor(file, '--q');
  fs.truncateSync(file, 100);
  t.throws(() => reader.readAll(), { instanceOf: InputError, message: /^--q: ".*q\.npy": file shrank while reading$/ });
  reader.close();
});
