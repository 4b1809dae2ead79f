import test from 'ava';
import { parseS3Location, S3BlobStore } from '@longattn/engine/queue';
import { startS3 } from './support.ts';

const BUCKET = 'longattn-store';

/** Bytes 0..n-1 of a fixed pseudo-random sequence (odd lengths, so parts never line up with anything). */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

test('S3BlobStore: positional writes (one multipart) read by range across parts, zeros in gaps; keys under the prefix', async (t) => {
  const s3 = await startS3([BUCKET]);
  Object.assign(process.env, s3.env); // the SDK's credential chain reads them
  const location = `s3://${BUCKET}/a/b`;
  // multipart from 5 MiB (S3's least part size) so a 6 MiB write goes through lib-storage's Upload in two parts
  const store = new S3BlobStore(location, parseS3Location(location, '--blobs', s3.env), '--blobs', { multipartBytes: 5 << 20 });
  try {
    const big = bytes((6 << 20) + 3, 1);
    const small = bytes(1001, 2);
    const expected = new Uint8Array(big.byteLength + 5000 + small.byteLength);
    expected.set(big, 0);
    expected.set(small, big.byteLength + 5000); // a 5000-byte gap nobody wrote
    await Promise.all([store.write('j1/in/q', 0, big), store.write('j1/in/q', big.byteLength + 5000, small)]);
    await store.seal('j1/in/q', { size: expected.byteLength, meta: { dtype: 'f32' } });
    t.deepEqual(await store.header('j1/in/q'), { size: expected.byteLength, meta: { dtype: 'f32' } });
    for (const [offset, length] of [
      [0, expected.byteLength],
      [big.byteLength - 7, 5000 + 20],
      [123457, 999],
    ] as const) {
      const got = await store.read('j1/in/q', offset, length);
      t.true(Buffer.from(got).equals(Buffer.from(expected.subarray(offset, offset + length))), `[${offset}, +${length})`);
    }
    // readInto zeroes only what no part covers: into memory holding other bytes, gaps and bytes past the end still read 0.
    for (const [offset, length] of [
      [big.byteLength - 7, 5000 + 20],
      [expected.byteLength - 10, 30],
      [expected.byteLength + 3, 8],
    ] as const) {
      const dirty = new Uint8Array(length).fill(0xa5);
      await store.readInto('j1/in/q', offset, dirty);
      const want = new Uint8Array(length);
      want.set(expected.subarray(offset, offset + length));
      t.true(Buffer.from(dirty).equals(Buffer.from(want)), `readInto dirty [${offset}, +${length})`);
    }
    await store.putMany([{ name: 'j1/p/0.3', data: small }]);
    // A blob put whole (no parts): its bytes, then zeros past its size, into dirty memory.
    const dirty = new Uint8Array(small.byteLength + 9).fill(0xa5);
    await store.readInto('j1/p/0.3', 0, dirty.subarray(0, 0));
    await store.readInto('j1/p/0.3', 0, dirty);
    const want = new Uint8Array(small.byteLength + 9);
    want.set(small);
    t.true(Buffer.from(dirty).equals(Buffer.from(want)), 'readInto of a whole object past its size');
    const past = new Uint8Array(5).fill(0xa5);
    await store.readInto('j1/p/0.3', small.byteLength + 2, past);
    t.deepEqual([...past], [0, 0, 0, 0, 0], 'readInto wholly past a whole object: zeros');
    t.deepEqual(await store.existsMany(['j1/p/0.3', 'j1/in/q', 'j1/p/9.9']), [true, true, false]);
    const [partial, missing] = await store.getMany(['j1/p/0.3', 'j1/p/9.9'], [small.byteLength, 4]);
    t.true(Buffer.from(partial!).equals(Buffer.from(small)));
    t.is(missing, null);
    const keys = await s3.keys(BUCKET);
    t.true(
      keys.every((k) => k.startsWith('a/b/j1/')),
      keys.join(' '),
    );
    t.is(keys.length, 4, 'two parts, an index, a partial');
    for (const bad of ['../x', '/abs', 'a//b', 'x!h']) await t.throwsAsync(store.write(bad, 0, small), { instanceOf: RangeError });
    await store.deletePrefix('j1/');
    t.deepEqual(await s3.keys(BUCKET), []);
  } finally {
    await store.close();
    await s3.close();
  }
});

test('S3BlobStore: a blob of more parts than one listing page (1000) seals, reads and deletes whole', async (t) => {
  const s3 = await startS3([BUCKET]);
  Object.assign(process.env, s3.env);
  const location = `s3://${BUCKET}/many`;
  const store = new S3BlobStore(location, parseS3Location(location, '--blobs', s3.env));
  try {
    const parts = 1203;
    const row = bytes(parts * 12, 3); // 1203 q-blocks' rows of 12 bytes, written in parallel as workers would
    for (let i = 0; i < parts; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, parts - i) }, (_, j) =>
          store.write('j/out/o', (i + j) * 12, row.subarray((i + j) * 12, (i + j + 1) * 12)),
        ),
      );
    }
    await store.seal('j/out/o', { size: row.byteLength });
    t.true(Buffer.from(await store.read('j/out/o', 0, row.byteLength)).equals(Buffer.from(row)));
    t.is((await s3.keys(BUCKET)).length, parts + 1);
    await store.deletePrefix('j/');
    t.deepEqual(await s3.keys(BUCKET), []);
  } finally {
    await store.close();
    await s3.close();
  }
});
