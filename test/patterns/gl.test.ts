import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runLocal } from '@longattn/engine';
import { readTensor, writeTensor } from '@longattn/tensor';
import { tempDir } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';
import { bruteWithBound, exactness } from '../support/reference64.ts';

/** gpujs:headlessgl (real shaders; run under `xvfb-run -a`, fails without a display — never skips) on a pattern union. */
test('gpujs:headlessgl: causal ∪ sinks ∪ globals ∪ stride ∪ block mask, exact against the float64 rule, the same bits twice', async (t) => {
  const dir = tempDir('longattn-patterns-gl-');
  try {
    const [H, Sq, Sk, D, B] = [2, 75, 88, 7, 16];
    const [nQb, nKb] = [Math.ceil(Sq / B), Math.ceil(Sk / B)];
    const cells = Array.from(randomTensor(H * nQb * nKb, 71), (x, n) => (Math.floor(n / nKb) % nQb === 2 ? 0 : x > 0.3 ? 1 : 0));
    const q = randomTensor(H * Sq * D, 72);
    const k = randomTensor(H * Sk * D, 73);
    const v = randomTensor(H * Sk * D, 74);
    writeTensor(join(dir, 'q.npy'), [H, Sq, D], q);
    writeTensor(join(dir, 'k.npy'), [H, Sk, D], k);
    writeTensor(join(dir, 'v.npy'), [H, Sk, D], v);
    const pattern = { sinks: 2, global: [20], stride: 11, blockMask: { block: B, shape: [H, nQb, nKb], cells } };
    const want = bruteWithBound({ layout: 'bhsd', B: 1, H, Hk: H, Sq, Sk, D, causal: true, ...pattern }, q, k, v);
    const bytes: Buffer[] = [];
    for (const run of [1, 2]) {
      const out = join(dir, `o${run}.npy`);
      const lse = join(dir, `l${run}.npy`);
      const base = { q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), v: join(dir, 'v.npy') };
      await runLocal({ ...base, out, lse, options: { causal: true, pattern }, backend: 'gpujs:headlessgl', blockQ: 16, blockK: 32 });
      const got = exactness({ out: readTensor(out).data, lse: readTensor(lse).data }, want);
      t.true(got.exact, `err ${got.err} (bound ${want.bound}), lse err ${got.lseErr}`);
      bytes.push(Buffer.concat([readFileSync(out), readFileSync(lse)]));
    }
    t.true(bytes[0]!.equals(bytes[1]!));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
