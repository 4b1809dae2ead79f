/**
 * Float32 buffers kept for reuse across tile jobs: the partials a tile job packs for the store
 * and reads back to merge are 0.1–1 MB each, and a fresh buffer of that size per part costs page
 * faults on first touch, an unmap when freed and GC, more than the copy into it. At the control
 * bench's 64-worker shape (768 KB parts) keeping them cut the workers' CPU per tile job by 18–21 %
 * and their system CPU by 24–29 % (docs/scaling.md, "Fifth pass"). A buffer is
 * lent by `take` and must come back by `give` only once nothing reads it any more (a store's
 * write has settled, a merge is done); one never given back is simply left to GC.
 */
export class BufferPool {
  private readonly free: Float32Array[] = [];

  /**
   * @param keep how many idle buffers it holds (the oldest beyond that are dropped): at most keep · maxLength floats stay
   * @param maxLength the longest buffer it keeps (floats); longer ones are left to GC
   */
  constructor(
    private readonly keep: number,
    private readonly maxLength: number,
  ) {}

  /** A view of `length` floats (contents undefined: the caller overwrites them all) into a kept buffer that fits, else a fresh one. */
  take(length: number): Float32Array {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i]!;
      if (b.length >= length && (best < 0 || b.length < this.free[best]!.length)) best = i;
    }
    if (best < 0) return new Float32Array(length);
    const [buffer] = this.free.splice(best, 1);
    return buffer!.subarray(0, length);
  }

  /** Returns a buffer from `take` (its whole underlying memory) for the next `take`. */
  give(view: Float32Array): void {
    const whole = new Float32Array(view.buffer, 0, view.buffer.byteLength / 4);
    if (whole.length > this.maxLength || this.free.some((b) => b.buffer === view.buffer)) return;
    this.free.push(whole);
    if (this.free.length > this.keep) this.free.shift();
  }
}
