import type { Redis } from 'ioredis';
import { checkReachable } from '../queue/connection.ts';
import { checkBlobName, type BlobHeader, type BlobStore } from './blob-store.ts';

/** Default chunk: 1 MiB values keep GETRANGE/SETRANGE cheap and spread big tensors over many keys. */
export const REDIS_CHUNK_BYTES = 1 << 20;

/**
 * Blobs as binary Redis strings: `{ns}{name}:h` holds the JSON header, `{ns}{name}:i` chunk i
 * (bytes [i·chunk, (i+1)·chunk)). A blob's keys share the hash tag `{name}`, so on Redis Cluster
 * each blob lives on one node (pipelines stay single-slot) while different blobs spread out.
 * Range reads and writes touch only the chunks they overlap (GETRANGE/SETRANGE).
 */
export class RedisBlobStore implements BlobStore {
  constructor(
    private readonly redis: Redis,
    readonly location: string,
    /** url: the server's, when it is not the queue's (ready() checks it answers). */
    private readonly options: { chunk?: number; namespace?: string; ownsConnection?: boolean; url?: string } = {},
  ) {}

  private get chunk(): number {
    return this.options.chunk ?? REDIS_CHUNK_BYTES;
  }

  private key(name: string, part: string | number): string {
    return `${this.options.namespace ?? 'longattn:blob:'}{${name}}:${part}`;
  }

  /** The chunks a byte range overlaps: [chunk index, offset inside the chunk, offset inside the range, length]. */
  private pieces(offset: number, length: number): [number, number, number, number][] {
    const out: [number, number, number, number][] = [];
    for (let at = offset; at < offset + length; ) {
      const i = Math.floor(at / this.chunk);
      const end = Math.min(offset + length, (i + 1) * this.chunk);
      out.push([i, at - i * this.chunk, at - offset, end - at]);
      at = end;
    }
    return out;
  }

  async write(name: string, offset: number, data: Uint8Array): Promise<void> {
    checkBlobName(name);
    const pipe = this.redis.pipeline();
    for (const [i, inChunk, inData, length] of this.pieces(offset, data.byteLength)) {
      pipe.setrange(this.key(name, i), inChunk, Buffer.from(data.buffer, data.byteOffset + inData, length));
    }
    await exec(pipe);
  }

  async seal(name: string, header: BlobHeader): Promise<void> {
    checkBlobName(name);
    await this.redis.set(this.key(name, 'h'), JSON.stringify({ ...header, chunk: this.chunk }));
  }

  async putMany(blobs: readonly { name: string; data: Uint8Array; meta?: Record<string, unknown> }[]): Promise<void> {
    const pipe = this.redis.pipeline();
    for (const { name, data, meta } of blobs) {
      checkBlobName(name);
      for (const [i, , inData, length] of this.pieces(0, data.byteLength)) {
        pipe.set(this.key(name, i), Buffer.from(data.buffer, data.byteOffset + inData, length));
      }
      pipe.set(this.key(name, 'h'), JSON.stringify({ size: data.byteLength, ...(meta ? { meta } : {}), chunk: this.chunk }));
    }
    await exec(pipe);
  }

  async header(name: string): Promise<BlobHeader | null> {
    checkBlobName(name);
    const text = await this.redis.get(this.key(name, 'h'));
    return text === null ? null : (JSON.parse(text) as BlobHeader);
  }

  async existsMany(names: readonly string[]): Promise<boolean[]> {
    const pipe = this.redis.pipeline();
    for (const name of names) pipe.exists(this.key(name, 'h'));
    return (await exec(pipe)).map((n) => n === 1);
  }

  /** Within one chunk, the reply itself when it is whole (no second copy of big blocks). */
  async read(name: string, offset: number, length: number): Promise<Uint8Array> {
    const pieces = this.pieces(offset, length);
    if (pieces.length === 1) {
      checkBlobName(name);
      const [i, inChunk, , n] = pieces[0]!;
      const reply = await this.redis.getrangeBuffer(this.key(name, i), inChunk, inChunk + n - 1);
      if (reply.byteLength === n) return reply;
    }
    const out = new Uint8Array(length);
    await this.readInto(name, offset, out);
    return out;
  }

  async readInto(name: string, offset: number, into: Uint8Array): Promise<void> {
    checkBlobName(name);
    const pieces = this.pieces(offset, into.byteLength);
    const pipe = this.redis.pipeline();
    for (const [i, inChunk, , n] of pieces) pipe.getrangeBuffer(this.key(name, i), inChunk, inChunk + n - 1);
    const parts = (await exec(pipe)) as Buffer[];
    pieces.forEach(([, , inData, n], p) => {
      into.set(parts[p]!, inData);
      into.fill(0, inData + parts[p]!.byteLength, inData + n); // never written: zeros
    });
  }

  async getMany(names: readonly string[], sizes?: readonly number[]): Promise<(Uint8Array | null)[]> {
    if (names.length === 0) return [];
    if (sizes?.every((size) => size <= this.chunk)) {
      // Known single-chunk blobs (partials): one GET each; putMany writes the chunk whole.
      const pipe = this.redis.pipeline();
      for (const name of names) {
        checkBlobName(name);
        pipe.getBuffer(this.key(name, 0));
      }
      const replies = (await exec(pipe)) as (Buffer | null)[];
      return replies.map((b, n) => (b === null && sizes[n] !== 0 ? null : (b ?? new Uint8Array(0))));
    }
    const pipe = this.redis.pipeline();
    for (const name of names) {
      checkBlobName(name);
      pipe.get(this.key(name, 'h'));
      pipe.getBuffer(this.key(name, 0));
    }
    const replies = await exec(pipe);
    return Promise.all(
      names.map(async (name, n) => {
        const text = replies[2 * n] as string | null;
        if (text === null) return null;
        const { size } = JSON.parse(text) as BlobHeader;
        const first = (replies[2 * n + 1] as Buffer | null) ?? Buffer.alloc(0);
        if (size <= this.chunk && first.byteLength === size) return first;
        const out = new Uint8Array(size);
        out.set(first.subarray(0, Math.min(size, this.chunk)));
        if (size > this.chunk) out.set(await this.read(name, this.chunk, size - this.chunk), this.chunk);
        return out;
      }),
    );
  }

  async delete(names: readonly string[], sizes?: readonly number[]): Promise<void> {
    if (names.length === 0) return;
    if (sizes) {
      const keys = names.flatMap((name, n) => [
        this.key(name, 'h'),
        ...Array.from({ length: Math.ceil(sizes[n]! / this.chunk) }, (_, i) => this.key(name, i)),
      ]);
      for (let i = 0; i < keys.length; i += 1000) await this.redis.unlink(...keys.slice(i, i + 1000));
      return;
    }
    const pipe = this.redis.pipeline();
    for (const name of names) pipe.get(this.key(name, 'h'));
    const headers = await exec(pipe);
    const keys: string[] = [];
    const unsealed: string[] = [];
    names.forEach((name, n) => {
      const text = headers[n] as string | null;
      if (text === null) {
        unsealed.push(name);
        return;
      }
      const { size } = JSON.parse(text) as BlobHeader;
      keys.push(this.key(name, 'h'));
      for (let i = 0; i * this.chunk < size; i++) keys.push(this.key(name, i));
    });
    for (let i = 0; i < keys.length; i += 1000) await this.redis.unlink(...keys.slice(i, i + 1000));
    for (const name of unsealed) await this.unlinkMatching(`${this.key(name, '')}*`);
  }

  async deletePrefix(prefix: string): Promise<void> {
    checkBlobName(prefix);
    await this.unlinkMatching(`${this.options.namespace ?? 'longattn:blob:'}{${prefix}*`);
  }

  async topNames(): Promise<string[]> {
    const ns = this.options.namespace ?? 'longattn:blob:';
    const names = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${ns}{*`, 'COUNT', 1000);
      for (const key of keys) names.add(key.slice(ns.length + 1).split(/[/}]/)[0]!);
      cursor = next;
    } while (cursor !== '0');
    return [...names];
  }

  async ready(): Promise<void> {
    if (this.options.url) await checkReachable(this.options.url, '--blobs');
  }

  private async unlinkMatching(pattern: string): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) await this.redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  }

  async close(): Promise<void> {
    if (this.options.ownsConnection) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** Runs a pipeline; the first failed command's error is thrown. */
async function exec(pipe: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const results = (await pipe.exec()) ?? [];
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
