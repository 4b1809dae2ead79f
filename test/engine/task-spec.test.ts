import test from 'ava';
import { checkPattern, type AttentionSpec } from '@longattn/attention';
import { fullSpec, taskSpec } from '../../packages/engine/src/local/task-spec.ts';

/** A spec with a [1, 3, 5] block mask whose cells are given (odd shape: 37 × 61 tokens, block 13). */
function masked(cells: number[]): AttentionSpec {
  const pattern = checkPattern({ blockMask: { block: 13, shape: [1, 3, 5], cells } }, { H: 1, Sq: 37, Sk: 61 })!;
  return {
    layout: 'bhsd',
    B: 1,
    H: 1,
    Hk: 1,
    Sq: 37,
    Sk: 61,
    D: 8,
    causal: false,
    window: { left: Infinity, right: Infinity },
    scale: 0.5,
    pattern,
  };
}

/** The task's copy after postMessage (structured clone), as a pool thread receives it. */
const cloned = <T>(x: T): T => structuredClone(x);

test('a block mask crosses in shared memory: tasks carry empty cells, the thread rebuilds the same spec', (t) => {
  const spec = masked([1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 0, 1]);
  const shipped = taskSpec(spec);
  t.is(shipped.spec.pattern?.blockMask?.cells, '');
  t.true(shipped.cells?.bytes instanceof SharedArrayBuffer);
  const first = fullSpec(cloned(shipped));
  t.deepEqual(first.spec, spec);
  const again = fullSpec(cloned(shipped));
  t.is(again.spec, first.spec, 'the same spec object while tasks bring the same spec (per-spec caches stay warm)');
  t.is(again.key, first.key);
});

test('a thread rebuilds the spec when only the cells change (same shapes, another mask)', (t) => {
  const a = masked([1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 0, 1]);
  const b = masked([1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 1, 1]);
  const fa = fullSpec(cloned(taskSpec(a)));
  const fb = fullSpec(cloned(taskSpec(b)));
  t.not(fa.key, fb.key);
  t.deepEqual(fb.spec, b);
  t.deepEqual(fullSpec(cloned(taskSpec(a))).spec, a);
});

test('a spec without a block mask travels as it is', (t) => {
  const spec: AttentionSpec = { ...masked([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), pattern: { sinks: 3 } };
  const shipped = taskSpec(spec);
  t.is(shipped.cells, undefined);
  t.deepEqual(fullSpec(cloned(shipped)).spec, spec);
});
