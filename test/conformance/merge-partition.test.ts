import test from 'ava';
import { merge } from '@longattn/attention';
import { jsTile } from '@longattn/kernels';

test('merging over any key partition equals one-shot attention', (t) => {
  const rows = 9;
  const keys = 40;
  const D = 7;
  const q = new Float32Array(rows * D).map((_, i) => Math.cos(i * 0.7));
  const k = new Float32Array(keys * D).map((_, i) => Math.sin(i * 1.3));
  const v = new Float32Array(keys * D).map((_, i) => Math.cos(i * 0.11 + 1));
  const rule = { diag: keys - rows, left: Infinity, right: 0 }; // causal, bottom-right
  const tile = (kStart: number, n: number) =>
    jsTile({
      rows,
      keys: n,
      D,
      scale: 0.4,
      qStart: 0,
      kStart,
      rule,
      full: false,
      q,
      k: k.subarray(kStart * D, (kStart + n) * D),
      v: v.subarray(kStart * D, (kStart + n) * D),
    });
  const whole = tile(0, keys);
  for (const cuts of [[20], [1, 2, 3], [13, 31], [5, 10, 15, 20, 25, 30, 35], [39]]) {
    const edges = [0, ...cuts, keys];
    const parts = edges.slice(1).map((end, i) => tile(edges[i]!, end - edges[i]!));
    const m = merge(parts);
    for (let i = 0; i < whole.o.length; i++) t.true(Math.abs(whole.o[i]! - m.o[i]!) < 2e-6, `partition ${cuts}: o[${i}]`);
    for (let r = 0; r < rows; r++) t.true(Math.abs(whole.lse[r]! - m.lse[r]!) < 2e-6, `partition ${cuts}: lse[${r}]`);
  }
});
