import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { releasedTileOutputs } from '../../packages/engine/src/young-gc.ts';

const held = () => process.memoryUsage().arrayBuffers;

/** V8 frees array-buffer backing stores on a background sweeper after the collection: poll briefly for the count to drop. */
async function settled(before: number): Promise<number> {
  for (let i = 0; i < 50 && held() - before >= 1e6; i++) await sleep(20);
  return held() - before;
}

// computeQBlock reports the partials it let go of; past 2 MiB the thread's young generation is
// collected, which frees dead tile outputs long before V8's own ~64 MB external-memory trigger.
test('released tile outputs past 2 MiB are collected right away', async (t) => {
  releasedTileOutputs(4 << 20); // loads gc() and flushes whatever is dead already
  await settled(held());
  const before = held();
  for (let i = 0; i < 64; i++) new Float32Array(16384 + 16).fill(i); // 64 dead "tile outputs", ~4 MiB
  t.true(held() - before >= 4e6, 'the dead buffers are still counted before the collection');
  releasedTileOutputs(1 << 20);
  await sleep(200); // nothing was collected, so nothing is swept however long we wait
  t.true(held() - before >= 4e6, 'below the threshold nothing is collected');
  releasedTileOutputs(1 << 20);
  const left = await settled(before);
  t.true(left < 1e6, `collected: ${left} bytes left`);
});
