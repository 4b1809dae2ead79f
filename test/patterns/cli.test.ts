import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { readTensor, writeTensor } from '@longattn/tensor';
import { longattn, tempDir } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';
import { bruteWithBound, exactness } from '../support/reference64.ts';

/** numpy's .npy v1 header + raw bytes, written here by hand (no library code): any dtype. */
function npy(path: string, descr: string, shape: number[], bytes: Buffer): void {
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  dict += `${' '.repeat((64 - ((11 + dict.length) % 64)) % 64)}\n`;
  const head = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, dict.length & 0xff, dict.length >> 8]);
  writeFileSync(path, Buffer.concat([head, Buffer.from(dict, 'latin1'), bytes]));
}

test('run --sinks --global --stride --block-mask (int32 mask file) --causal through the real CLI: exact against the float64 rule', async (t) => {
  const dir = tempDir('longattn-patterns-cli-');
  try {
    const [H, Sq, Sk, D, B] = [2, 90, 103, 5, 16];
    const [nQb, nKb] = [Math.ceil(Sq / B), Math.ceil(Sk / B)];
    const q = randomTensor(H * Sq * D, 51);
    const k = randomTensor(H * Sk * D, 52);
    const v = randomTensor(H * Sk * D, 53);
    writeTensor(join(dir, 'q.npy'), [H, Sq, D], q);
    writeTensor(join(dir, 'k.npy'), [H, Sk, D], k);
    writeTensor(join(dir, 'v.npy'), [H, Sk, D], v);
    const cells = Array.from(randomTensor(nQb * nKb, 54), (x) => (x > 0.5 ? 3 : 0)); // any nonzero int is visible
    const ints = Buffer.alloc(4 * cells.length);
    for (let n = 0; n < cells.length; n++) ints.writeInt32LE(cells[n]!, 4 * n);
    npy(join(dir, 'm.npy'), '<i4', [nQb, nKb], ints);
    const r = await longattn([
      'run',
      '--q',
      join(dir, 'q.npy'),
      '--k',
      join(dir, 'k.npy'),
      '--v',
      join(dir, 'v.npy'),
      '--out',
      join(dir, 'o.npy'),
      '--lse',
      join(dir, 'lse.npy'),
      '--causal',
      '--sinks',
      '2',
      '--global',
      '45,3',
      '--stride',
      '9',
      '--block-mask',
      join(dir, 'm.npy'),
      '--mask-block',
      String(B),
      '--backend',
      'ort',
      '--json',
    ]);
    t.is(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    t.true(json.skippedTiles >= 0 && json.tiles > 0);
    const want = bruteWithBound(
      {
        layout: 'bhsd',
        B: 1,
        H,
        Hk: H,
        Sq,
        Sk,
        D,
        causal: true,
        sinks: 2,
        global: [45, 3],
        stride: 9,
        blockMask: { block: B, shape: [nQb, nKb], cells },
      },
      q,
      k,
      v,
    );
    const got = exactness({ out: readTensor(join(dir, 'o.npy')).data, lse: readTensor(join(dir, 'lse.npy')).data }, want);
    t.true(got.exact, `err ${got.err} (bound ${want.bound}), lse err ${got.lseErr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad pattern flags exit 2 with one line naming the flag, and write nothing', async (t) => {
  const dir = tempDir('longattn-patterns-bad-');
  try {
    for (const n of ['q', 'k', 'v']) writeTensor(join(dir, `${n}.npy`), [40, 4], randomTensor(160, 61));
    npy(join(dir, 'm.npy'), '|u1', [3, 3], Buffer.alloc(9, 1));
    npy(join(dir, 'big.npy'), '>i4', [3, 3], Buffer.alloc(36));
    const io = ['--q', join(dir, 'q.npy'), '--k', join(dir, 'k.npy'), '--v', join(dir, 'v.npy'), '--out', join(dir, 'o.npy')];
    const cases: [string[], string][] = [
      [['--sinks', '-1'], '--sinks'],
      [['--stride', '0'], '--stride'],
      [['--global', '3,x'], '--global'],
      [['--global', '40'], '--global'],
      [['--block-mask', join(dir, 'm.npy')], '--block-mask'],
      [['--mask-block', '16'], '--mask-block'],
      [['--block-mask', join(dir, 'm.npy'), '--mask-block', '8'], '--block-mask'], // needs [5,5]
      [['--block-mask', join(dir, 'big.npy'), '--mask-block', '16'], '--block-mask'], // big-endian
      [['--block-mask', join(dir, 'missing.npy'), '--mask-block', '16'], '--block-mask'],
    ];
    for (const [flags, name] of cases) {
      const r = await longattn(['run', ...io, ...flags]);
      t.is(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
      t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
      t.true(r.stderr.includes(name), `${flags.join(' ')} names ${name}: ${r.stderr}`);
    }
    t.throws(() => readFileSync(join(dir, 'o.npy')), undefined, 'no output written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mask bigbird|longformer|strided: the layouts from their definitions; the same seed, the same bytes', async (t) => {
  const dir = tempDir('longattn-patterns-mask-');
  try {
    const mask = async (args: string[]) => {
      const out = join(dir, `${args.join('_').replace(/[^\w]/g, '')}.npy`);
      const r = await longattn(['mask', ...args, '--out', out]);
      t.is(r.code, 0, r.stderr);
      const file = readFileSync(out);
      const headerLen = file.readUInt16LE(8);
      t.regex(file.toString('latin1', 10, 10 + headerLen), /'descr': '\|u1'/);
      return file.subarray(10 + headerLen);
    };
    // Longformer, n = 700, block 100: 7×7, window 1, 1 global block.
    const lf = await mask(['longformer', '--n', '700', '--block', '100']);
    for (let qb = 0; qb < 7; qb++) {
      for (let kb = 0; kb < 7; kb++)
        t.is(lf[qb * 7 + kb], Math.abs(qb - kb) <= 1 || qb === 0 || kb === 0 ? 1 : 0, `longformer ${qb},${kb}`);
    }
    // Strided, 8×8 blocks, window 0, stride 3: the diagonal and every 3rd block back (and forward) from it.
    const st = await mask(['strided', '--n', '64', '--block', '8', '--window', '0', '--stride', '3']);
    for (let qb = 0; qb < 8; qb++) for (let kb = 0; kb < 8; kb++) t.is(st[qb * 8 + kb], (qb - kb) % 3 === 0 ? 1 : 0, `strided ${qb},${kb}`);
    // BigBird: window and globals always in; random blocks from the seed.
    const a = await mask(['bigbird', '--n', '2048', '--block', '64', '--seed', '5', '--heads', '2']);
    const b = await mask(['bigbird', '--n', '2048', '--block', '64', '--seed', '5', '--heads', '2']);
    const c = await mask(['bigbird', '--n', '2048', '--block', '64', '--seed', '6', '--heads', '2']);
    t.true(a.equals(b), 'same seed, same mask');
    t.false(a.equals(c), 'another seed, another mask');
    t.is(a.length, 2 * 32 * 32);
    for (let h = 0; h < 2; h++) {
      for (let qb = 0; qb < 32; qb++) {
        let extra = 0;
        for (let kb = 0; kb < 32; kb++) {
          const fixed = Math.abs(qb - kb) <= 1 || qb === 0 || kb === 0;
          if (fixed) t.is(a[(h * 32 + qb) * 32 + kb], 1);
          else extra += a[(h * 32 + qb) * 32 + kb]!;
        }
        t.true(extra <= 3, `at most 3 random blocks in row ${qb}`);
      }
    }
    const bad = await longattn(['mask', 'diagonal', '--out', join(dir, 'x.npy')]);
    t.is(bad.code, 2, bad.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
