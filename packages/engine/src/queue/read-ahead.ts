import type { AttentionSpec } from '@longattn/attention';
import type { BlobRange } from './blob-layout.ts';

/**
 * The aligned K/V key blocks after a task's missed ones that the same reads also fetch, into the
 * worker thread's block cache: each missed head's run goes on to the head's last key while the
 * run, from its first missed block, stays within `maxBytes`, and stops at a block `have` says is
 * cached or the task's own. Only where every earlier key is visible (no left window bound, no
 * pattern, not linear): a causal task of q-blocks [a, b) needs keys up to b and the next task of
 * the same head on this worker a little further, so without it each of a worker's tasks extends
 * its K and its V by one request each (on S3 a ranged GET); with it, a worker's first task of a
 * head fetches the rest of the head's input part in the same requests (docs/scaling.md, "Data
 * movement"). `misses`: [blockK, D] float32 row ranges of the K/V blobs ([B, Hk, Sk, D]), aligned
 * to blockK (the last one of a head shorter). Returns ranges of the same kind, in key order per head.
 */
export function readAhead(
  spec: AttentionSpec,
  blockK: number,
  misses: readonly BlobRange[],
  have: (r: BlobRange) => boolean,
  maxBytes: number,
): BlobRange[] {
  if (spec.pattern || spec.linear || Number.isFinite(spec.window.left)) return []; // left: Infinity when unbounded
  const rowBytes = spec.D * 4;
  // Per K/V head (blob, start of its Sk rows): where its missed blocks begin and end.
  const runs = new Map<string, { name: string; headStart: number; first: number; end: number }>();
  for (const r of misses) {
    const headStart = r.offset - ((r.offset / rowBytes) % spec.Sk) * rowBytes;
    const id = `${r.name}@${headStart}`;
    const run = runs.get(id);
    if (!run) runs.set(id, { name: r.name, headStart, first: r.offset, end: r.offset + r.length });
    else {
      run.first = Math.min(run.first, r.offset);
      run.end = Math.max(run.end, r.offset + r.length);
    }
  }
  const out: BlobRange[] = [];
  for (const { name, headStart, first, end } of runs.values()) {
    const headEnd = headStart + spec.Sk * rowBytes;
    for (let at = end; at < headEnd; at += blockK * rowBytes) {
      const r = { name, offset: at, length: Math.min(blockK * rowBytes, headEnd - at) };
      if (r.offset + r.length - first > maxBytes || have(r)) break;
      out.push(r);
    }
  }
  return out;
}
