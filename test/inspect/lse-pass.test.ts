import { join } from 'node:path';
import test from 'ava';
import { runLocal, runLocalLse } from '@longattn/engine';
import { readTensor, uniformF32, writeTensor } from '@longattn/tensor';
import { tempDir } from '../support/cli.ts';
import { bruteAttention } from '../support/reference64.ts';

/**
 * inspect's LSE-only first pass as the local engine runs it (runLocalLse: pool threads, V-free
 * tiles, [rows, 0] replies): its LSE against the float64 one from the definitions (exactness rule,
 * −∞ exactly for rows that see no key), bitwise the same on 1 and 3 threads, and bitwise the LSE
 * `run` writes for the same backend and blocks. Odd shape: GQA, Sq > Sk (fully masked rows),
 * causal + window + sinks, several q-blocks and key blocks per head.
 */
for (const backend of ['ort', 'js', 'wasm']) {
  test(`LSE-only pass (${backend}): exact, the same bits on 1 and 3 threads and as run's LSE`, async (t) => {
    const dir = tempDir();
    const [H, Hk, Sq, Sk, D] = [4, 2, 301, 257, 13];
    const q = uniformF32(H * Sq * D, 5);
    const k = uniformF32(Hk * Sk * D, 6);
    writeTensor(join(dir, 'q.npy'), [H, Sq, D], q);
    writeTensor(join(dir, 'k.npy'), [Hk, Sk, D], k);
    const options = { causal: true, window: { left: 40, right: 0 }, pattern: { sinks: 3 } };
    const request = { q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), options, backend, blockQ: 64, blockK: 48 };
    const one = await runLocalLse(request, { threads: 1 });
    const three = await runLocalLse(request, { threads: 3 });
    t.is(one.backend, backend);
    t.true(Buffer.from(one.lse.buffer).equals(Buffer.from(three.lse.buffer)), '1 vs 3 threads');
    await runLocal({ ...request, v: join(dir, 'k.npy'), out: join(dir, 'o.npy'), lse: join(dir, 'lse.npy') }, { threads: 2 });
    const ran = readTensor(join(dir, 'lse.npy')).data;
    t.true(Buffer.from(one.lse.buffer).equals(Buffer.from(ran.buffer, ran.byteOffset, ran.byteLength)), "run's LSE bits");
    const ref = bruteAttention({ layout: 'bhsd', B: 1, H, Hk, Sq, Sk, D, causal: true, window: [40, 0], sinks: 3 }, q, k, k).lse;
    let err = 0;
    let empty = 0;
    for (let i = 0; i < ref.length; i++) {
      if (ref[i] === -Infinity) {
        empty++;
        t.is(one.lse[i], -Infinity, `row ${i} sees no key`);
      } else err = Math.max(err, Math.abs(one.lse[i]! - ref[i]!));
    }
    t.true(empty > 0, 'the shape has rows that see no key');
    t.true(err <= 1e-4, `max |lse − lse_ref| = ${err} (docs/math.md, "Exactness rule")`);
  });
}
