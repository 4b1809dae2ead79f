import { keyHigh, keyLow, maskRule } from './mask.ts';
import { hasPattern, rowRule, rowSeesAny } from './pattern.ts';
import type { TilePartial } from './partial.ts';
import type { AttentionSpec } from './spec.ts';

/**
 * Scores past float32's range: finite inputs whose scaled dot products s·q·k overflow (inputs
 * around 1e20, a huge --scale) make a row's max score +Infinity, and from there O turns NaN and
 * LSE NaN or ±Infinity, differently per backend (wasm and gpujs:cpu gave such a row O = 0 and
 * LSE -Infinity, as if masked). The job must fail, not write them (docs/limits.md).
 */
/** How every ScoreOverflowError message begins (the queue recognises it after a thread boundary). */
export const SCORE_OVERFLOW_PREFIX = 'scores overflow float32';

export class ScoreOverflowError extends Error {
  override readonly name = 'ScoreOverflowError';
}

/**
 * Checks a q-block's merged rows before they are written; every engine passes its merged rows
 * through here. o: [rows, D], lse: [rows] — a row is fine when its O is finite and its LSE
 * finite, or -Infinity for a row the mask leaves without keys (O = 0). Skipped when the job let
 * NaN/Inf inputs through (spec.allowNonfinite). Throws ScoreOverflowError naming the first bad row of Q.
 */
export function checkMergedRows(
  spec: AttentionSpec,
  block: { readonly b: number; readonly h: number; readonly qStart: number },
  partial: Pick<TilePartial, 'rows' | 'D' | 'o' | 'lse'>,
): void {
  if (spec.allowNonfinite) return;
  const { rows, D, o, lse } = partial;
  // One branch-free pass first: x − x is 0 for finite x and NaN for NaN and ±∞, so the sums stay 0
  // unless some O is non-finite; the rows are looked at one by one only when an LSE is not finite.
  let sum = 0;
  for (let d = 0, end = rows * D; d < end; d++) sum += o[d]! - o[d]!;
  let finite = sum === 0;
  for (let r = 0; finite && r < rows; r++) finite = Number.isFinite(lse[r]!);
  if (finite) return;
  const rule = maskRule(spec);
  const patterned = hasPattern(spec) ? rowRule(spec, block.h) : undefined;
  const seesAny = (i: number) =>
    patterned ? rowSeesAny(spec, patterned, i) : Math.max(0, keyLow(rule, i)) <= Math.min(spec.Sk - 1, keyHigh(rule, i));
  for (let r = 0; r < rows; r++) {
    const l = lse[r]!;
    const i = block.qStart + r;
    // -Infinity is right only for a row the mask leaves without keys; one that sees keys got it from scores at -Infinity
    let bad = l === -Infinity ? seesAny(i) : !Number.isFinite(l);
    for (let d = r * D, end = d + D; !bad && d < end; d++) bad = o[d]! - o[d]! !== 0;
    if (bad) {
      const where = `${spec.B > 1 ? `batch ${block.b}, ` : ''}head ${block.h}, query row ${i}`;
      throw new ScoreOverflowError(
        `${SCORE_OVERFLOW_PREFIX} at --q ${where} (scale·q·k beyond ±3.4e38 with scale ${spec.scale}): ` +
          'scale Q or K down, or lower --scale (docs/limits.md)',
      );
    }
  }
}
