export { InputError } from './spec.ts';
export type { AttentionSpec, Layout, Window } from './spec.ts';
export { isUnmasked, keyHigh, keyLow, maskRule, unmaskedFlops, visiblePairs } from './mask.ts';
export type { MaskRule } from './mask.ts';
export { validateSpec } from './validate.ts';
export { hasPattern, markVisible, markVisibleSpans, rowRule, rowSeesAny, rowVisibleCount, rowVisibleSpan } from './pattern.ts';
export type { BlockMask, Pattern, RowRule } from './pattern.ts';
export { checkPattern, MAX_GLOBALS, MAX_MASK_CELLS } from './pattern-options.ts';
export { MAX_BLOCK_MASK_BYTES, parseBlockMaskNpy } from './block-mask-npy.ts';
export type { PatternOptions } from './pattern-options.ts';
export type { SpecOptions } from './validate.ts';
export { headRows, layoutShape, lseShape } from './layout.ts';
export type { HeadRows } from './layout.ts';
export { emptyPartial, widenPartial } from './partial.ts';
export type { TilePartial } from './partial.ts';
export { merge } from './merge.ts';
export { checkMergedRows, SCORE_OVERFLOW_PREFIX, ScoreOverflowError } from './overflow.ts';
export { naiveFloat32Attention, referenceAttention, referenceRows } from './reference.ts';
export type { Numbers } from './reference.ts';
export { plan, tileKeySpans } from './planner.ts';
export { BAND_SUB_ROWS, MAX_BAND_WIDTH, type Band } from './band-tiles.ts';
export { intervalSpec, largestTileRows, markIntervalsVisible, markStrideVisible, strideBlocks, strideChunkKeys } from './stride-tiles.ts';
export type { Plan, PlanOptions, QBlockPlan, Tile } from './planner.ts';
export { exactnessBound, maxAbsDiff } from './exactness.ts';
export { LINEAR_BLOCKS } from './linear-plan.ts';
export {
  addInto,
  addKeys,
  addStates,
  applyState,
  copyState,
  emptyRows,
  emptyState,
  finishRows,
  keyState,
  LINEAR_EPS,
  phi,
  phiRows,
} from './linear-state.ts';
export type { LinearRows, LinearState } from './linear-state.ts';
