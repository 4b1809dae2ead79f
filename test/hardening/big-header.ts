/** Crafted .safetensors files with large headers for the header tests (and by hand: `tsx big-header.ts DIR`). */
import { closeSync, openSync, writeSync } from 'node:fs';
import { randomTensor } from '../support/random.ts';

/**
 * Writes q, k, v ([H, S, D] float32, seeded) into one .safetensors file whose header also holds
 * `junk`: `lists` empty lists in __metadata__ (3 bytes each) and `names` extra zero-size tensors.
 * Returns the header length in bytes.
 */
export function writeBigHeader(path: string, shape: [number, number, number], junk: { lists?: number; names?: number }): number {
  const n = shape[0] * shape[1] * shape[2];
  const tensors = ['q', 'k', 'v'].map((name, i) => ({ name, data: randomTensor(n, i + 1) }));
  const entries = tensors.map(
    (t, i) => `"${t.name}":{"dtype":"F32","shape":[${shape.join(',')}],"data_offsets":[${i * n * 4},${(i + 1) * n * 4}]}`,
  );
  const head = Buffer.from(`{${entries.join(',')}`);
  const lists = junk.lists ?? 0;
  const names = junk.names ?? 0;
  const listsOpen = Buffer.from(',"__metadata__":{"junk":[');
  const listsClose = Buffer.from(']}');
  const nameEntry = (i: number) => `,"t${String(i).padStart(8, '0')}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`;
  const nameBytes = nameEntry(0).length;
  const listBytes = lists > 0 ? listsOpen.length + 3 * lists - 1 + listsClose.length : 0;
  const unpadded = head.length + listBytes + names * nameBytes + 1;
  const length = Math.ceil((8 + unpadded) / 8) * 8 - 8;
  const header = Buffer.alloc(8 + length, 0x20);
  header.writeBigUInt64LE(BigInt(length), 0);
  let at = 8 + head.copy(header, 8);
  if (lists > 0) {
    at += listsOpen.copy(header, at);
    header.fill('[],', at, at + 3 * lists - 1);
    at += 3 * lists - 1;
    at += listsClose.copy(header, at);
  }
  for (let i = 0; i < names; i++) at += header.write(nameEntry(i), at);
  header.write('}', at);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header);
    for (const t of tensors) writeSync(fd, new Uint8Array(t.data.buffer));
  } finally {
    closeSync(fd);
  }
  return length;
}
