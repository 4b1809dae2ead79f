import test from 'ava';
import { kernelPool, runOnThread, TASKS_PER_THREAD } from '@longattn/engine/queue';

const fixture = new URL('./fixtures/arrival-thread.mjs', import.meta.url).href;
type Times = { arrived: number; finished: number };

test('kernel pool: a thread gets its next tile jobs while it computes one (piscina’s own abort signal would hold them back)', async (t) => {
  t.is(TASKS_PER_THREAD, 3);
  const pool = kernelPool(fixture, 1);
  try {
    const signal = new AbortController().signal;
    const ours = await Promise.all([0, 1, 2].map(() => runOnThread<Times>(pool, { ms: 400 }, signal)));
    for (const later of ours.slice(1))
      t.true(later.arrived < ours[0]!.finished, `arrived ${later.arrived - ours[0]!.arrived} ms after the first, which took 400`);
    // What the worker did before: piscina never gives an abortable task to a busy thread.
    const theirs = (await Promise.all([0, 1].map(() => pool.run({ ms: 200 }, { signal })))) as Times[];
    t.true(theirs[1]!.arrived >= theirs[0]!.finished, 'with piscina’s signal the second task waits for the first');
  } finally {
    await pool.destroy();
  }
});

test('kernel pool: a task handed back (signal aborted) rejects at once, and the pool still closes', async (t) => {
  const pool = kernelPool(fixture, 1);
  const handBack = new AbortController();
  const running = runOnThread<Times>(pool, { ms: 60_000 }, handBack.signal);
  setTimeout(() => handBack.abort(), 100);
  const started = performance.now();
  await t.throwsAsync(running, { message: 'aborted' });
  t.true(performance.now() - started < 30_000, 'not after the task');
  const closing = performance.now();
  await pool.destroy(); // stops the abandoned task's thread (the worker's close() does this after its grace)
  t.true(performance.now() - closing < 30_000, 'the pool closes without waiting for the abandoned task');
});
