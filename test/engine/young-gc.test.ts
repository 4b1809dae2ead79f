import test from 'ava';
import { releasedTileOutputs } from '../../packages/engine/src/young-gc.ts';

// computeQBlock reports the partials it let go of; past 2 MiB the thread's young generation is
// collected, which frees dead tile outputs long before V8's own ~64 MB external-memory trigger.
test('released tile outputs past 2 MiB are collected right away', (t) => {
  const held = () => process.memoryUsage().arrayBuffers;
  releasedTileOutputs(4 << 20); // loads gc() and flushes whatever is dead already
  const before = held();
  for (let i = 0; i < 64; i++) new Float32Array(16384 + 16).fill(i); // 64 dead "tile outputs", ~4 MiB
  t.true(held() - before >= 4e6, 'the dead buffers are still counted before the collection');
  releasedTileOutputs(1 << 20);
  t.true(held() - before >= 4e6, 'below the threshold nothing is collected');
  releasedTileOutputs(1 << 20);
  t.true(held() - before < 1e6, `collected: ${held() - before} bytes left`);
});
