import type { JobResult, LinearErrorReport } from '@longattn/engine';

/** Peak resident set size of this process so far, in MB. */
export function peakRssMB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** One human line about a finished job. */
export function describeResult(r: JobResult): string {
  const { B, H, Hk, Sq, Sk, D } = r.shape;
  const heads = Hk === H ? `${H} heads` : `${H} heads / ${Hk} kv heads`;
  return [
    ...(r.approximation === 'linear' ? ['linear attention (approximation, not softmax): φ = elu + 1, no LSE'] : []),
    `done in ${(r.wallMs / 1000).toFixed(2)} s: O → ${r.out}${r.lse ? `, LSE → ${r.lse}` : ''}`,
    `  problem  B=${B}, ${heads}, Sq=${Sq}, Sk=${Sk}, D=${D}`,
    `  engine   ${r.engine}, backend ${r.backend} on ${r.device}, ${r.threads} threads, tiles ${r.blockQ}×${r.blockK}`,
    `  work     ${r.tiles} tiles (${r.skippedTiles} skipped by the mask), ${(r.flops / 1e9).toFixed(2)} GFLOP in ${(r.computeMs / 1000).toFixed(2)} s = ${r.gflops.toFixed(1)} GFLOP/s`,
  ].join('\n');
}

/** The `--report-error` line: how far the linear output is from exact softmax on the sampled rows. */
export function describeErrorReport(e: LinearErrorReport): string {
  return `  error    vs exact softmax on ${e.rows.length} sampled rows (seed ${e.seed}): max abs ${e.maxAbs.toPrecision(3)}, relative ${e.relative.toPrecision(3)}`;
}
