/**
 * Protocol Buffers wire format, just what ONNX models need: varints (wire type 0), 32-bit floats
 * (type 5) and length-delimited bytes (type 2: strings, packed arrays, nested messages).
 * A message is the concatenation of its fields; `message(...)` skips absent (undefined) fields.
 */
export type Field = Uint8Array | undefined;

const utf8 = new TextEncoder();

/** Unsigned LEB128 of a non-negative integer or, via BigInt, a negative int64 (10 bytes, two's complement). */
export function varint(value: number | bigint): Uint8Array {
  let x = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return Uint8Array.from(out);
}

export function concat(parts: readonly Field[]): Uint8Array {
  const present = parts.filter((p): p is Uint8Array => p !== undefined);
  const out = new Uint8Array(present.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of present) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const tag = (field: number, wireType: number): Uint8Array => varint(field * 8 + wireType);

/** Field `field` as an int32/int64/enum/bool varint. */
export const intField = (field: number, value: number): Uint8Array => concat([tag(field, 0), varint(value)]);

/** Field `field` as a 32-bit float (wire type 5, little-endian). */
export function floatField(field: number, value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setFloat32(0, value, true);
  return concat([tag(field, 5), bytes]);
}

/** Field `field` as length-delimited bytes: a nested message, packed array or raw data. */
export const bytesField = (field: number, bytes: Uint8Array): Uint8Array => concat([tag(field, 2), varint(bytes.length), bytes]);

export const stringField = (field: number, value: string): Uint8Array => bytesField(field, utf8.encode(value));

/** Repeated integers, packed (proto3 default for repeated scalars). */
export const packedInts = (field: number, values: readonly number[]): Uint8Array => bytesField(field, concat(values.map(varint)));

export const message = (...fields: Field[]): Uint8Array => concat(fields);
