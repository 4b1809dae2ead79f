import test from 'ava';
import { validateSpec } from '@longattn/attention';
import { readAhead } from '../../packages/engine/src/queue/read-ahead.ts';

// K/V [B = 2, Hk = 3, Sk = 517, D = 24] float32: a head's rows are 517 · 96 bytes; key blocks of 128 rows (the last 5).
const D = 24;
const row = D * 4;
const Sk = 517;
const blockK = 128;
const block = (b: number, kvh: number, kb: number, name = 'j/in/k') => ({
  name,
  offset: ((b * 3 + kvh) * Sk + kb * blockK) * row,
  length: Math.min(blockK, Sk - kb * blockK) * row,
});
const spec = (options: Record<string, unknown>) => validateSpec({ q: [2, 6, 300, D], k: [2, 3, Sk, D], v: [2, 3, Sk, D] }, options);
const none = () => false;

test('readAhead: a causal task’s missed blocks run on to its head’s last key, per K/V head, in key order', (t) => {
  const causal = spec({ causal: true });
  // Batch 1, kv head 2 (the blob's last head): blocks 0–1 missed → 2, 3, 4 (the last, 5 rows) ahead.
  t.deepEqual(readAhead(causal, blockK, [block(1, 2, 0), block(1, 2, 1)], none, 1 << 30), [block(1, 2, 2), block(1, 2, 3), block(1, 2, 4)]);
  // Two heads of K and one of V missed at once: each runs on within its own head only.
  t.deepEqual(readAhead(causal, blockK, [block(0, 0, 3), block(0, 1, 4), block(0, 0, 2, 'j/in/v')], none, 1 << 30), [
    block(0, 0, 4),
    block(0, 0, 3, 'j/in/v'),
    block(0, 0, 4, 'j/in/v'),
  ]);
  t.deepEqual(readAhead(spec({}), blockK, [block(0, 1, 0)], none, 1 << 30).length, 4, 'no mask: every key is visible too');
});

test('readAhead: stops at a cached or own block and at the byte limit; none for windows, patterns and linear attention', (t) => {
  const causal = spec({ causal: true });
  const cached = block(0, 1, 3);
  const have = (r: { offset: number }) => r.offset === cached.offset;
  t.deepEqual(readAhead(causal, blockK, [block(0, 1, 0)], have, 1 << 30), [block(0, 1, 1), block(0, 1, 2)], 'up to the cached block');
  // The run from the first missed block (2 blocks) may grow to 3 blocks' bytes: one block ahead.
  t.deepEqual(readAhead(causal, blockK, [block(0, 1, 0), block(0, 1, 1)], none, 3 * blockK * row), [block(0, 1, 2)]);
  t.deepEqual(readAhead(causal, blockK, [block(0, 1, 0), block(0, 1, 1)], none, 2 * blockK * row), []);
  t.deepEqual(readAhead(causal, blockK, [block(0, 1, 4)], none, 1 << 30), [], 'the head’s last block: nothing ahead');
  t.deepEqual(readAhead(spec({ causal: true, window: { left: 200, right: 0 } }), blockK, [block(0, 1, 0)], none, 1 << 30), []);
  t.deepEqual(readAhead(spec({ causal: true, pattern: { sinks: 4 } }), blockK, [block(0, 1, 0)], none, 1 << 30), []);
  t.deepEqual(readAhead(spec({ causal: true, linear: true }), blockK, [block(0, 1, 0)], none, 1 << 30), []);
});
