import test from 'ava';
import { listBackends } from '@longattn/kernels';
import { planLimits } from '../../packages/engine/src/limits.ts';

// A backend's default tile must run under the default limits: a user who gives no --block-q/--block-k
// must never be told to give smaller ones (webgpu's 4096×16384 default failed every n ≥ 2048).
test('every backend’s default tile fits the default LONGATTN_MAX_TILE_AREA', (t) => {
  const { maxTileArea } = planLimits();
  t.true(listBackends().length >= 5);
  for (const backend of listBackends()) {
    const { blockQ, blockK } = backend.defaultBlocks;
    t.true(blockQ * blockK <= maxTileArea, `${backend.name}: ${blockQ}×${blockK} > ${maxTileArea}`);
  }
});
