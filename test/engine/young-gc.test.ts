import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { releasedChunkGarbage, releasedTileOutputs } from '../../packages/engine/src/young-gc.ts';

const held = () => process.memoryUsage().arrayBuffers;

/** V8 frees array-buffer backing stores on a background sweeper after the collection: poll briefly for the count to drop. */
async function settled(before: number): Promise<number> {
  for (let i = 0; i < 50 && held() - before >= 1e6; i++) await sleep(20);
  return held() - before;
}

// computeQBlock reports the partials it let go of; past 2 MiB the thread's young generation is
// collected, which frees dead tile outputs long before V8's own ~64 MB external-memory trigger.
test.serial('released tile outputs past 2 MiB are collected right away', async (t) => {
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

// Inspect's chunk arrays (a received vector [Sk] float64 per chunk, its cloned copy on the main
// thread) live for a whole chunk, long enough to be promoted: a young collection does not free
// them, so releasedChunkGarbage runs a full one per 16 MiB released.
test.serial('dead chunk arrays promoted out of the young generation are collected once 16 MiB have been released', async (t) => {
  releasedChunkGarbage(16 << 20); // loads gc(), collects what is dead already, counter back to 0
  await settled(held());
  const before = held();
  let chunks: Float64Array[] | undefined = Array.from({ length: 8 }, (_, i) => new Float64Array(65536).fill(i)); // 4 MiB
  releasedTileOutputs(4 << 20);
  releasedTileOutputs(4 << 20); // two young collections while they live: promoted
  t.is(chunks.length, 8);
  chunks = undefined;
  releasedTileOutputs(4 << 20); // dead now, but a young collection does not reach the old generation
  await sleep(200);
  t.true(held() - before >= 4e6, 'a young collection left the promoted buffers');
  releasedChunkGarbage(8 << 20);
  await sleep(200);
  t.true(held() - before >= 4e6, 'below 16 MiB nothing is collected');
  releasedChunkGarbage(8 << 20);
  const left = await settled(before);
  t.true(left < 1e6, `collected: ${left} bytes left`);
});
