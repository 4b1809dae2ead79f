/**
 * LRU cache of input blocks, keyed by blob + byte range, bounded in bytes. Concurrent requests
 * for the same block share one load. Workers keep the K/V blocks their tiles reuse (a q-block's
 * tiles and the next q-blocks of the same head read the same K/V).
 */
export class BlockCache {
  private readonly entries = new Map<string, Promise<Float32Array>>();
  private readonly sizes = new Map<string, number>();
  private bytes = 0;
  hits = 0;
  misses = 0;
  /** Bytes loaded on misses so far. */
  missBytes = 0;

  constructor(private readonly capacityBytes: number) {}

  /** Whether `key` is cached or loading (no hit counted, no recency change). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string, load: () => Promise<Float32Array>): Promise<Float32Array> {
    const found = this.entries.get(key);
    if (found) {
      this.hits++;
      this.entries.delete(key);
      this.entries.set(key, found); // most recent last
      return found;
    }
    this.misses++;
    const loading = load();
    this.entries.set(key, loading);
    loading.then(
      (block) => {
        if (this.entries.get(key) !== loading) return;
        this.sizes.set(key, block.byteLength);
        this.bytes += block.byteLength;
        this.missBytes += block.byteLength;
        this.evict();
      },
      () => this.entries.delete(key),
    );
    return loading;
  }

  private evict(): void {
    for (const key of this.entries.keys()) {
      if (this.bytes <= this.capacityBytes) return;
      const size = this.sizes.get(key);
      if (size === undefined) continue; // still loading
      this.entries.delete(key);
      this.sizes.delete(key);
      this.bytes -= size;
    }
  }
}
