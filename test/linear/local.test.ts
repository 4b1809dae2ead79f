import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runLocal, type JobRequest } from '@longattn/engine';
import { readTensor } from '@longattn/tensor';
import { tempDir } from '../support/cli.ts';
import { at, LINEAR_CASES, lastKey, linearAttention, maxAbsDiff, writeCase, type LinearCase } from './reference.ts';

const dir = tempDir('longattn-linear-');
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function request(c: LinearCase, paths: { q: string; k: string; v: string }, out: string): JobRequest {
  return {
    ...paths,
    out: join(dir, out),
    options: { layout: c.layout, causal: c.causal, linear: true },
    ...(c.blockQ ? { blockQ: c.blockQ, blockK: c.blockK! } : {}),
  };
}

for (const c of LINEAR_CASES) {
  test(`${c.name}: the local engine matches the float64 formula within the naive-float32 bound, bitwise the same on 1 and 3 threads`, async (t) => {
    const { paths, ref, bound } = writeCase(join(dir, c.name), c);
    const outs: Buffer[] = [];
    for (const threads of [1, 3]) {
      const r = request(c, paths, `${c.name}-${threads}.npy`);
      const result = await runLocal(r, { threads });
      t.is(result.approximation, 'linear');
      t.is(result.backend, 'js');
      outs.push(readFileSync(r.out));
    }
    t.true(outs[1]!.equals(outs[0]!), '3 threads vs 1');
    const o = readTensor(join(dir, `${c.name}-1.npy`)).data;
    const err = maxAbsDiff(o, ref);
    t.true(err <= bound, `max |o − ref| = ${err} exceeds ${bound}`);
    t.false(o.some(Number.isNaN));
    // A row that sees no key (causal, Sq > Sk): num = den = 0, o = 0 / 1e-6 = 0.
    let empty = 0;
    for (let b = 0; b < c.B; b++)
      for (let h = 0; h < c.H; h++)
        for (let i = 0; i < c.Sq; i++) {
          if (lastKey(c, i) >= 0) continue;
          empty++;
          const row = o.subarray(at(c, b, h, c.H, c.Sq, i), at(c, b, h, c.H, c.Sq, i) + c.D);
          t.true(
            row.every((x) => x === 0),
            `row ${i} sees no key: o = 0`,
          );
        }
    if (c.Sq > c.Sk && c.causal) t.true(empty > 0, 'the case has rows that see no key');
  });
}

test('the bound can fail: dropping one visible key moves o far past it', (t) => {
  const c = LINEAR_CASES[1]!;
  const { q, k, v, ref, bound } = writeCase(join(dir, 'off-by-one'), c);
  const v2 = v.slice();
  for (let h = 0; h < c.Hk; h++) for (let d = 0; d < c.D; d++) v2[at(c, 0, h, c.Hk, c.Sk, c.Sk - 1) + d] = 0; // the last row's last key
  const wrong = linearAttention(c, q, k, v2);
  t.true(maxAbsDiff(wrong, ref) > 100 * bound, `${maxAbsDiff(wrong, ref)} vs bound ${bound}`);
});
