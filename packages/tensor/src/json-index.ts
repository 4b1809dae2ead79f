/**
 * A JSON object indexed without being built: a .safetensors header can be 100 MB of JSON, and
 * JSON.parse of one turned a 97 MB header into 1.67 GB of heap (a 90 MB one of 30M empty lists
 * into 3.9 GB and 52 s). indexJsonObject checks the whole text's syntax in one pass over the
 * bytes and keeps only the top-level keys and where each value lies; a caller JSON.parses the few
 * values it needs. Memory: the index (one key and two u32 per top-level entry) and one key set per
 * open nested object.
 */
import { isUtf8 } from 'node:buffer';

/** Deepest nesting accepted; a .safetensors header needs 3 (header → entry → shape). */
export const JSON_DEPTH_MAX = 64;

/** A key given twice in one object: JSON.parse would silently keep the last. */
export class RepeatedKeyError extends SyntaxError {
  override readonly name = 'RepeatedKeyError';
  constructor(
    readonly key: string,
    /** True for a key of the top-level object (for a .safetensors header: a tensor name). */
    readonly topLevel: boolean,
    offset: number,
  ) {
    super(`repeated key ${JSON.stringify(key)} at byte ${offset}`);
  }
}

/** The top-level object: keys in text order; `range(key)` is [start, end) of its value's bytes. */
export interface JsonIndex {
  readonly keys: ReadonlyMap<string, number>;
  range(key: string): [number, number] | undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Indexes `bytes` (utf-8 JSON whose top level is an object). Throws SyntaxError naming the byte
 * offset for anything JSON.parse would refuse, for nesting deeper than JSON_DEPTH_MAX, and
 * RepeatedKeyError for a key repeated in any object.
 */
export function indexJsonObject(bytes: Buffer): JsonIndex {
  if (!isUtf8(bytes)) throw new SyntaxError('not valid utf-8');
  const n = bytes.length;
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at byte ${i}`);
  };
  // The hot loops scan with a local index and store `i` once: a closure's captured variable is a
  // memory slot, and touching it per byte was ~25 ns/byte here.
  const space = (): void => {
    let j = i;
    for (let c = bytes[j]; c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = bytes[++j]);
    i = j;
  };
  /** Skips a string starting at its opening quote; returns whether it held an escape. */
  const skipString = (): boolean => {
    let escaped = false;
    let j = i + 1;
    for (;;) {
      if (j >= n) {
        i = j;
        fail('unterminated string');
      }
      const c = bytes[j]!;
      if (c === QUOTE) {
        i = j + 1;
        return escaped;
      }
      if (c < 0x20) {
        i = j;
        fail('control character in a string');
      }
      if (c === BACKSLASH) {
        escaped = true;
        const e = bytes[j + 1];
        i = j;
        if (e === 0x75) {
          for (let h = 2; h < 6; h++) if (!isHex(bytes[j + h])) fail('bad \\u escape');
          j += 6;
          continue;
        }
        if (e === undefined || !ESCAPES.has(e)) fail('bad escape');
        j += 2;
        continue;
      }
      j++;
    }
  };
  const key = (): string => {
    if (bytes[i] !== QUOTE) fail('expected a string key');
    const start = i;
    skipString();
    return keyText(bytes, start, i);
  };
  const literal = (word: string): void => {
    for (let k = 0; k < word.length; k++) if (bytes[i + k] !== word.charCodeAt(k)) fail('unexpected token');
    i += word.length;
  };
  const digits = (): number => {
    const start = i;
    let j = i;
    for (let c = bytes[j]; c !== undefined && c >= 0x30 && c <= 0x39; c = bytes[++j]);
    i = j;
    return j - start;
  };
  const number = (): void => {
    if (bytes[i] === 0x2d) i++;
    if (bytes[i] === 0x30) i++;
    else if (digits() === 0) fail('bad number');
    if (bytes[i] === 0x2e) {
      i++;
      if (digits() === 0) fail('bad number');
    }
    if (bytes[i] === 0x65 || bytes[i] === 0x45) {
      i++;
      if (bytes[i] === 0x2b || bytes[i] === 0x2d) i++;
      if (digits() === 0) fail('bad number');
    }
  };
  /** Skips any value (whitespace before it included); nested objects' keys are checked for repeats. */
  const value = (depth: number): void => {
    space();
    const c = bytes[i];
    if (c === 0x7b || c === 0x5b) {
      if (depth >= JSON_DEPTH_MAX) fail(`nesting deeper than ${JSON_DEPTH_MAX}`);
      container(c === 0x7b, depth + 1, undefined);
    } else if (c === QUOTE) skipString();
    else if (c === 0x74) literal('true');
    else if (c === 0x66) literal('false');
    else if (c === 0x6e) literal('null');
    else if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) number();
    else fail('unexpected token');
  };
  /**
   * An object or array at its opening bracket. `top` (the top-level object only) records each
   * entry and returns false for a repeated key; other objects check repeats with a key set.
   */
  const container = (isObject: boolean, depth: number, top: ((k: string, start: number, end: number) => boolean) | undefined): void => {
    const close = isObject ? 0x7d : 0x5d;
    const seen = isObject && top === undefined ? new KeySet(bytes) : undefined;
    i++;
    space();
    if (bytes[i] === close) {
      i++;
      return;
    }
    for (;;) {
      if (isObject) {
        space();
        const at = i;
        const k = top ? key() : '';
        if (seen) {
          if (bytes[i] !== QUOTE) fail('expected a string key');
          skipString();
          if (!seen.add(at, i)) throw new RepeatedKeyError(keyText(bytes, at, i), false, at);
        }
        space();
        if (bytes[i] !== 0x3a) fail("expected ':'");
        i++;
        space();
        const start = i;
        value(depth);
        if (top && !top(k, start, i)) throw new RepeatedKeyError(k, true, at);
      } else {
        value(depth);
      }
      space();
      if (bytes[i] === 0x2c) {
        i++;
        continue;
      }
      if (bytes[i] === close) {
        i++;
        return;
      }
      fail(`expected ',' or '${isObject ? '}' : ']'}'`);
    }
  };

  const keys = new Map<string, number>();
  let ranges = new Uint32Array(1024);
  space();
  if (bytes[i] !== 0x7b) fail('expected a JSON object');
  container(true, 1, (k, start, end) => {
    if (keys.has(k)) return false;
    const slot = keys.size;
    if (2 * slot + 2 > ranges.length) {
      const grown = new Uint32Array(ranges.length * 2);
      grown.set(ranges);
      ranges = grown;
    }
    ranges[2 * slot] = start;
    ranges[2 * slot + 1] = end;
    keys.set(k, slot);
    return true;
  });
  space();
  if (i !== n) fail('trailing text');
  return {
    keys,
    range(k) {
      const slot = keys.get(k);
      return slot === undefined ? undefined : [ranges[2 * slot]!, ranges[2 * slot + 1]!];
    },
  };
}

/** The characters allowed after a backslash, besides `u`: " \ / b f n r t. */
const ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
}

/** A JSON string's value: bytes [start, end) include the quotes. */
function keyText(bytes: Buffer, start: number, end: number): string {
  const raw = bytes.toString('utf8', start + 1, end - 1);
  return raw.includes('\\') ? (JSON.parse(bytes.toString('utf8', start, end)) as string) : raw;
}

/**
 * The keys of one nested object, for repeats: a small object (a tensor entry has 3 keys) compares
 * its keys' raw bytes without making strings; past 16 keys, or once a key holds an escape (one
 * key can be spelled two ways), the decoded keys go into a Set.
 */
class KeySet {
  /** [start, end) of each key so far, while raw bytes are compared. */
  private readonly spans: number[] = [];
  private set: Set<string> | undefined;

  constructor(private readonly bytes: Buffer) {}

  /** Adds the key at bytes [start, end) (quotes included); false when it was there already. */
  add(start: number, end: number): boolean {
    const { bytes, spans } = this;
    if (this.set === undefined) {
      if (spans.length < 32 && !hasByte(bytes, BACKSLASH, start, end)) {
        for (let s = 0; s < spans.length; s += 2) if (sameBytes(bytes, start, end, spans[s]!, spans[s + 1]!)) return false;
        spans.push(start, end);
        return true;
      }
      this.set = new Set();
      for (let s = 0; s < spans.length; s += 2) this.set.add(keyText(bytes, spans[s]!, spans[s + 1]!));
    }
    const k = keyText(bytes, start, end);
    if (this.set.has(k)) return false;
    this.set.add(k);
    return true;
  }
}

/** Plain loops: keys are short, and a native call per key costs more than comparing a few bytes. */
function hasByte(bytes: Buffer, byte: number, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] === byte) return true;
  return false;
}

function sameBytes(bytes: Buffer, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (let i = 0; i < aEnd - a; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}
