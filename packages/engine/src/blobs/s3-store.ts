import type { S3Client } from '@aws-sdk/client-s3';
import { checkBlobName, type BlobHeader, type BlobStore } from './blob-store.ts';
import { connectS3, MAX_SOCKETS, type S3Sdk } from './s3-client.ts';
import type { S3Location } from './s3-location.ts';

/** Writes at least this big go up as a multipart Upload (lib-storage) in parts of this size; S3's minimum part is 5 MiB. */
export const S3_MULTIPART_BYTES = 16 << 20;
/**
 * Bytes per write() an uploader should send (uploadTensor): 8 MiB parts are 8× fewer PUTs than
 * 1 MiB ones, stay single PUTs (under S3_MULTIPART_BYTES), and let a worker's run of adjacent K/V
 * blocks come in one ranged GET (docs/scaling.md, "Data movement").
 */
export const S3_WRITE_BYTES = 8 << 20;
/** Sealed blobs' part lists kept per process (each a few KiB); older ones are dropped. */
const INDEX_CACHE_ENTRIES = 256;

/** A sealed blob's index, the object `NAME!h`: without `parts` the data is the whole object `NAME`. */
interface S3Index extends BlobHeader {
  /** [offset, length] of each part object `NAME!w/OFFSET`, by offset. */
  parts?: [number, number][];
}

/**
 * Blobs as objects of an S3-compatible bucket under `prefix` (docs/scaling.md, where bytes live).
 * S3 has no positional writes, so a blob is stored as:
 *   `NAME`               — a whole blob put by putMany (a tile's partial): one PUT, one GET;
 *   `NAME!w/OFFSET`      — the bytes one write() sent (an input chunk, a q-block's output rows),
 *                          OFFSET zero-padded to 16 digits so listing order is byte order;
 *   `NAME!h`             — the index seal() writes: header JSON plus the [offset, length] of every part.
 * Nothing is copied to assemble a blob: readers resolve a byte range through the index into ranged
 * GETs of the parts it overlaps (zeros in gaps), so many workers' output rows are "stitched" when
 * `result` reads them. `!` never occurs in blob names, so these keys cannot collide with a blob's.
 *
 * The SDK loads on first use (the CLI does not pay for it otherwise). The first request of a
 * store checks the bucket (HeadBucket): a missing bucket is an InputError naming `--blobs`, refused
 * credentials one naming AWS_ACCESS_KEY_ID, an unreachable endpoint one naming AWS_ENDPOINT_URL.
 */
export class S3BlobStore implements BlobStore {
  readonly writeBytes = S3_WRITE_BYTES;
  private client: Promise<{ client: S3Client; sdk: S3Sdk }> | undefined;
  /** Requests sent so far, by kind (the request counts in docs/scaling.md; tests check them). */
  readonly requests = { get: 0, put: 0, head: 0, list: 0, delete: 0 };
  private readonly indexes = new Map<string, Promise<S3Index | null>>();
  /** Request slots left (limited) and the requests waiting for one. */
  private free = MAX_SOCKETS;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly location: string,
    private readonly where: S3Location,
    private readonly argument = '--blobs',
    private readonly options: { multipartBytes?: number } = {},
  ) {}

  /** The object key of a blob, or of one of its index/part objects: only engine-checked names under the prefix. */
  private key(name: string, suffix: '' | '!h' | '!w/' | `!w/${string}` = ''): string {
    checkBlobName(name);
    return `${this.where.prefix}${name}${suffix}`;
  }

  private partKey(name: string, offset: number): string {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`bad blob offset ${offset}`);
    return this.key(name, `!w/${String(offset).padStart(16, '0')}`);
  }

  /**
   * Runs a request (its reply body read to the end inside) once fewer than MAX_SOCKETS of this
   * store's are in flight: a read of many parts queues here, not in the SDK's socket pool (which
   * warns on stderr when requests wait there).
   */
  private async limited<T>(request: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((go) => this.waiting.push(go));
    try {
      return await request();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }

  /** The client and the SDK's command classes (loaded once, with the client: no import per request). */
  private s3(): Promise<{ client: S3Client; sdk: S3Sdk }> {
    this.client ??= connectS3(this.location, this.where, this.argument);
    return this.client;
  }

  private put(key: string, body: Uint8Array | string): Promise<void> {
    return this.limited(() => this.putNow(key, body));
  }

  private async putNow(key: string, body: Uint8Array | string): Promise<void> {
    const { client, sdk } = await this.s3();
    const size = typeof body === 'string' ? body.length : body.byteLength;
    const multipart = this.options.multipartBytes ?? S3_MULTIPART_BYTES;
    if (size >= multipart && typeof body !== 'string') {
      const { Upload } = await import('@aws-sdk/lib-storage');
      this.requests.put += Math.ceil(size / multipart) + 2; // create, parts, complete
      await new Upload({ client, params: { Bucket: this.where.bucket, Key: key, Body: body }, partSize: multipart }).done();
      return;
    }
    this.requests.put++;
    await client.send(new sdk.PutObjectCommand({ Bucket: this.where.bucket, Key: key, Body: body }));
  }

  /** The object's bytes (a range of them with `range`), or null when it is not there. */
  private get(key: string, range?: [number, number]): Promise<Uint8Array | null> {
    return this.limited(async () => {
      const reply = await this.send(key, range);
      return reply && ((await reply.Body?.transformToByteArray()) ?? new Uint8Array(0));
    });
  }

  /**
   * Bytes [from, to) of an object streamed straight into `into` at `at` (no buffer in between);
   * false when the object is not there. A reply of another length than asked is an error.
   */
  private getInto(key: string, range: [number, number], into: Uint8Array, at: number): Promise<boolean> {
    return this.limited(() => this.getIntoNow(key, range, into, at));
  }

  private async getIntoNow(key: string, [from, to]: [number, number], into: Uint8Array, at: number): Promise<boolean> {
    const reply = await this.send(key, [from, to]);
    if (!reply) return false;
    let end = at;
    for await (const chunk of reply.Body as AsyncIterable<Uint8Array>) {
      if (end + chunk.byteLength > at + to - from) throw new Error(`${this.location}: ${key}: more bytes than the range ${from}-${to}`);
      into.set(chunk, end);
      end += chunk.byteLength;
    }
    if (end !== at + to - from) throw new Error(`${this.location}: ${key}: ${end - at} bytes for the range ${from}-${to}`);
    return true;
  }

  private async send(key: string, range?: [number, number]) {
    const { client, sdk } = await this.s3();
    this.requests.get++;
    try {
      return await client.send(
        new sdk.GetObjectCommand({ Bucket: this.where.bucket, Key: key, ...(range ? { Range: `bytes=${range[0]}-${range[1] - 1}` } : {}) }),
      );
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /** The byte size of an object, or null. */
  private size(key: string): Promise<number | null> {
    return this.limited(() => this.sizeNow(key));
  }

  private async sizeNow(key: string): Promise<number | null> {
    const { client, sdk } = await this.s3();
    this.requests.head++;
    try {
      return (await client.send(new sdk.HeadObjectCommand({ Bucket: this.where.bucket, Key: key }))).ContentLength ?? 0;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /**
   * Every key starting with `keyPrefix`, with its size, 1000 a page. ListObjects (v1) with the
   * last key as marker, which every S3 service pages the same way: s3rver 3.7.1 cannot make
   * ListObjectsV2's continuation tokens on Node ≥ 17 (its cipher is gone from OpenSSL 3).
   */
  private async list(keyPrefix: string): Promise<{ key: string; size: number }[]> {
    const { client, sdk } = await this.s3();
    const out: { key: string; size: number }[] = [];
    for (let marker: string | undefined, more = true; more; ) {
      this.requests.list++;
      const page = await client.send(
        new sdk.ListObjectsCommand({ Bucket: this.where.bucket, Prefix: keyPrefix, ...(marker ? { Marker: marker } : {}) }),
      );
      const contents = page.Contents ?? [];
      for (const o of contents) if (o.Key?.startsWith(keyPrefix)) out.push({ key: o.Key, size: o.Size ?? 0 });
      marker = contents.at(-1)?.Key;
      more = page.IsTruncated === true && marker !== undefined;
    }
    return out;
  }

  /** Deletes objects, 1000 per DeleteObjects request (S3's most). */
  private async remove(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    const { client, sdk } = await this.s3();
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000).map((Key) => ({ Key }));
      this.requests.delete++;
      const reply = await client.send(new sdk.DeleteObjectsCommand({ Bucket: this.where.bucket, Delete: { Objects: batch, Quiet: true } }));
      const failed = reply.Errors?.[0];
      if (failed) throw new Error(`${this.location}: could not delete ${failed.Key}: ${failed.Code} ${failed.Message}`);
    }
  }

  /** The parts written so far, by offset; every listed key is checked to be one this store builds. */
  private async parts(name: string): Promise<[number, number][]> {
    const prefix = this.key(name, '!w/');
    return (await this.list(prefix)).map(({ key, size }) => {
      const digits = key.slice(prefix.length);
      if (!/^\d{16}$/.test(digits)) throw new Error(`${this.location}: unexpected object ${JSON.stringify(key)}`);
      return [Number(digits), size] as [number, number];
    });
  }

  /**
   * A blob's index: sealed (from `!h`), whole (putMany without meta: a HEAD, only when there is no
   * `!h`), or null; sealed ones are cached.
   */
  private index(name: string): Promise<S3Index | null> {
    const cached = this.indexes.get(name);
    if (cached) return cached;
    const loading = (async (): Promise<S3Index | null> => {
      const text = await this.get(this.key(name, '!h'));
      if (text !== null) return parseIndex(Buffer.from(text).toString('utf8'), `${this.location} ${name}`);
      const size = await this.size(this.key(name));
      return size === null ? null : { size };
    })();
    if (this.indexes.size >= INDEX_CACHE_ENTRIES) this.indexes.delete(this.indexes.keys().next().value!);
    this.indexes.set(name, loading);
    loading.then(
      (found) => found === null && this.indexes.delete(name),
      () => this.indexes.delete(name),
    );
    return loading;
  }

  async write(name: string, offset: number, data: Uint8Array): Promise<void> {
    await this.put(this.partKey(name, offset), data);
  }

  async seal(name: string, header: BlobHeader): Promise<void> {
    const index: S3Index = { ...header, parts: await this.parts(name) };
    await this.put(this.key(name, '!h'), JSON.stringify(index));
    this.indexes.delete(name);
  }

  async putMany(blobs: readonly { name: string; data: Uint8Array; meta?: Record<string, unknown> }[]): Promise<void> {
    await Promise.all(
      blobs.map(async ({ name, data, meta }) => {
        if (meta) await this.put(this.key(name, '!h'), JSON.stringify({ size: data.byteLength, meta }));
        await this.put(this.key(name), data);
      }),
    );
  }

  async header(name: string): Promise<BlobHeader | null> {
    const index = await this.index(name);
    return index && { size: index.size, ...(index.meta ? { meta: index.meta } : {}) };
  }

  async existsMany(names: readonly string[]): Promise<boolean[]> {
    return Promise.all(names.map(async (name) => (await this.index(name)) !== null));
  }

  async read(name: string, offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(name, offset, out);
    return out;
  }

  /**
   * Ranged GETs of the parts the range overlaps (or of the whole object); unsealed blobs list their
   * parts. Only the bytes no part covers are zeroed: the rest is written once, by its GET (a second
   * pass over a block read into fresh memory cost as much as the copy).
   */
  async readInto(name: string, offset: number, into: Uint8Array): Promise<void> {
    const end = offset + into.byteLength;
    const index = await this.index(name);
    if (index && !index.parts) {
      const stop = Math.min(end, Math.max(offset, index.size));
      into.fill(0, stop - offset);
      if (offset < stop) await this.getInto(this.key(name), [offset, stop], into, 0);
      return;
    }
    const parts = (index?.parts ?? (await this.parts(name))).filter(([at, n]) => at < end && at + n > offset);
    // Parts are in offset order (a listing's); a retried write's may overlap: both hold the same bytes.
    let covered = offset;
    for (const [at, n] of parts) {
      if (at > covered) into.fill(0, covered - offset, at - offset);
      covered = Math.max(covered, at + n);
    }
    if (covered < end) into.fill(0, covered - offset);
    await Promise.all(
      parts.map(async ([at, n]) => {
        const from = Math.max(at, offset);
        const to = Math.min(at + n, end);
        await this.getInto(this.partKey(name, at), [from - at, to - at], into, from - offset);
      }),
    );
  }

  async getMany(names: readonly string[], sizes?: readonly number[]): Promise<(Uint8Array | null)[]> {
    return Promise.all(
      names.map(async (name) => {
        const whole = await this.get(this.key(name));
        if (whole || sizes) return whole;
        const index = await this.index(name);
        return index && this.read(name, 0, index.size);
      }),
    );
  }

  /** With `sizes` (blobs put whole, without meta, e.g. partials) only the data objects go. */
  async delete(names: readonly string[], sizes?: readonly number[]): Promise<void> {
    const keys = names.map((name) => this.key(name));
    if (!sizes) {
      for (const name of names) {
        this.indexes.delete(name);
        keys.push(this.key(name, '!h'), ...(await this.parts(name)).map(([at]) => this.partKey(name, at)));
      }
    }
    await this.remove(keys);
  }

  async deletePrefix(prefix: string): Promise<void> {
    checkBlobName(prefix);
    for (const name of [...this.indexes.keys()]) if (name.startsWith(prefix)) this.indexes.delete(name);
    await this.remove((await this.list(`${this.where.prefix}${prefix}`)).map((o) => o.key));
  }

  /** The first segments of the blob names under the prefix (job ids, for the reducer's sweep). */
  async topNames(): Promise<string[]> {
    const names = new Set<string>();
    for (const { key } of await this.list(this.where.prefix)) {
      const first = key.slice(this.where.prefix.length).split('/')[0]!.split('!')[0]!;
      if (first !== '') names.add(first);
    }
    return [...names];
  }

  /** Connects and checks the bucket (connectS3: InputError naming `--blobs` or the AWS setting). */
  async ready(): Promise<void> {
    await this.s3();
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) (await client.catch(() => undefined))?.client.destroy();
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string };
  return e.name === 'NoSuchKey' || e.name === 'NotFound';
}

/** An index object read back from the bucket, checked before any of it is used. */
function parseIndex(text: string, what: string): S3Index {
  const index = JSON.parse(text) as S3Index;
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  const ok =
    typeof index === 'object' &&
    index !== null &&
    count(index.size) &&
    (index.meta === undefined || (typeof index.meta === 'object' && index.meta !== null)) &&
    (index.parts === undefined ||
      (Array.isArray(index.parts) && index.parts.every((p) => Array.isArray(p) && p.length === 2 && count(p[0]) && count(p[1]))));
  if (!ok) throw new Error(`${what}: malformed index object`);
  return index;
}
