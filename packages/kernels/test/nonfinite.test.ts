import test from 'ava';
import { hasNonFinite } from '../src/nonfinite.ts';

// The scan sums x·0 in four lanes and a tail: every length up to 9 and every position must be seen.
test('hasNonFinite finds NaN, +∞ and −∞ at every position of odd and even lengths, and nothing in finite data', (t) => {
  const finite = [0, -0, 1.5, -2, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45, 7];
  for (let n = 0; n <= 9; n++) {
    const a = Float32Array.from(finite.slice(0, n));
    t.false(hasNonFinite(a), `finite, length ${n}`);
    for (let at = 0; at < n; at++) {
      for (const bad of [Number.NaN, Infinity, -Infinity]) {
        const b = a.slice();
        b[at] = bad;
        t.true(hasNonFinite(b), `${bad} at ${at} of ${n}`);
      }
    }
  }
  const both = Float32Array.of(Infinity, -Infinity, 1, 2); // +∞·0 and −∞·0 are both NaN, never cancelling
  t.true(hasNonFinite(both));
});
