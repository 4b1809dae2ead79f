/**
 * Issue 14.4, 14.6, 14.12: input headers and files at the boundary. A .safetensors header over
 * the cap is refused; a big valid-but-silly one is read once per process (pool threads get the
 * parsed layout, never the header) within a measured RSS bound; a repeated tensor name, an .npy
 * header with `'__proto__'` or a repeated key, and an input that is not a regular file (a FIFO,
 * a device) are refused with exit 2 naming the argument.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { SAFETENSORS_HEADER_CAP } from '@longattn/tensor';
import { longattn, tempDir } from '../support/cli.ts';
import { writeBigHeader } from './big-header.ts';
import { assertBadInput, smallInputs, snapshot } from './support.ts';

const inputs = smallInputs();
const shape: [number, number, number] = [2, 300, 16];

function refs(file: string): string[] {
  return ['--q', `${file}#q`, '--k', `${file}#k`, '--v', `${file}#v`];
}

/** Runs q, k, v out of `file` (js, `threads` threads, --json): the output bytes and the peak RSS. */
async function runFrom(file: string, threads: number): Promise<{ out: Buffer; peakRssMB: number; wallMs: number }> {
  const dir = tempDir();
  const r = await longattn(['run', ...refs(file), '--out', join(dir, 'o.npy'), '--backend', 'js', '--threads', String(threads), '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  const result = JSON.parse(r.stdout) as { peakRssMB: number; wallMs: number };
  const out = readFileSync(join(dir, 'o.npy'));
  rmSync(dir, { recursive: true });
  return { out, peakRssMB: result.peakRssMB, wallMs: result.wallMs };
}

test('a .safetensors header just over the 100 MB cap → exit 2 naming the argument, nothing allocated', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'w.safetensors');
  const fd = openSync(file, 'w');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(SAFETENSORS_HEADER_CAP + 8));
  writeSync(fd, length);
  ftruncateSync(fd, 8 + SAFETENSORS_HEADER_CAP + 8 + 4096); // sparse: the length is real, the bytes are holes
  closeSync(fd);
  const r = await longattn(['run', '--q', `${file}#q`, '--k', inputs.k, '--v', inputs.v, '--out', join(dir, 'o.npy')]);
  assertBadInput(t, r, '--q', /header length 100000008 exceeds the 100000000-byte cap/);
});

// Each silly header is compared with the same tensors under a tiny header, same threads: the
// difference is what the header costs. Before this fix the 90 MB one of 30M empty lists cost
// 3.9 GB and 52 s, parsed per tensor and per thread.
const silly: [string, { lists?: number; names?: number }, number][] = [
  ['30M empty lists in __metadata__ (90 MB)', { lists: 30_000_000 }, 2],
  ['1M zero-size tensors (61 MB)', { names: 1_000_000 }, 4],
];
for (const [name, junk, multiple] of silly) {
  test.serial(`a big valid header of ${name}: read once, RSS within ${multiple}× its size over a tiny header's run`, async (t) => {
    const dir = tempDir();
    try {
      const small = join(dir, 'small.safetensors');
      const big = join(dir, 'big.safetensors');
      writeBigHeader(small, shape, {});
      const headerMB = writeBigHeader(big, shape, junk) / 2 ** 20;
      const base = await runFrom(small, 2);
      const got = await runFrom(big, 2);
      t.true(got.out.equals(base.out), 'the same output bits as from a tiny header');
      const extra = got.peakRssMB - base.peakRssMB;
      t.log(
        `header ${headerMB.toFixed(0)} MB: peak RSS ${got.peakRssMB.toFixed(0)} MB vs ${base.peakRssMB.toFixed(0)} MB, ${got.wallMs.toFixed(0)} ms`,
      );
      t.true(
        extra <= multiple * headerMB,
        `the header cost ${extra.toFixed(0)} MB of RSS, over ${multiple}× its ${headerMB.toFixed(0)} MB`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a tensor name given twice in a .safetensors header → exit 2 naming the file and the name', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'w.safetensors');
  writeBigHeader(file, [2, 5, 4], {});
  // rename tensor "v" to "k": the header now holds "k" twice (JSON.parse would silently keep the last)
  const bytes = readFileSync(file);
  const at = bytes.indexOf('"v":');
  bytes.write('"k":', at);
  writeFileSync(file, bytes);
  const r = await longattn(['run', '--q', `${file}#q`, '--k', `${file}#k`, '--v', inputs.v, '--out', join(dir, 'o.npy')]);
  assertBadInput(t, r, '--q', new RegExp(`"${file}": tensor name "k" appears twice in the header`));
});

const npyHeader = (dict: string) => {
  const text = `${dict}`.padEnd(118, ' ');
  return Buffer.concat([
    Buffer.from([0x93]),
    Buffer.from('NUMPY'),
    Buffer.from([1, 0, 119, 0]),
    Buffer.from(`${text}\n`),
    Buffer.alloc(2 * 37 * 8 * 4),
  ]);
};
const npyCases: [string, string, RegExp][] = [
  [
    '__proto__ key',
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 37, 8), '__proto__': {'descr': '<f8'}}",
    /unexpected key "__proto__"/,
  ],
  ['only __proto__', "{'__proto__': {'descr': '<f4', 'fortran_order': False, 'shape': (2, 37, 8)}}", /header lacks 'descr'/],
  ['repeated key', "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 37, 8), 'shape': (2, 37, 8)}", /repeated key "shape"/],
];
for (const [name, dict, pattern] of npyCases) {
  test(`.npy header with a ${name} → exit 2 naming the argument`, async (t) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'k.npy'), npyHeader(dict));
    const r = await longattn(['run', '--q', inputs.q, '--k', join(dir, 'k.npy'), '--v', inputs.v, '--out', join(dir, 'o.npy')]);
    assertBadInput(t, r, '--k', pattern);
  });
}

test('--q naming a FIFO → exit 2 before opening it (it would block), nothing touched', async (t) => {
  const dir = tempDir();
  const fifo = join(dir, 'q.npy');
  execFileSync('mkfifo', [fifo]);
  const before = snapshot(dir);
  const r = await longattn(['run', '--q', fifo, '--k', inputs.k, '--v', inputs.v, '--out', join(dir, 'o.npy')], { timeoutMs: 30_000 });
  assertBadInput(t, r, '--q', /cannot read ".*q\.npy": not a regular file \(a FIFO\)/);
  t.deepEqual(snapshot(dir), before);
});

test('--v naming a device (through a link) → exit 2', async (t) => {
  const dir = tempDir();
  symlinkSync('/dev/zero', join(dir, 'v.npy'));
  const r = await longattn(['run', '--q', inputs.q, '--k', inputs.k, '--v', join(dir, 'v.npy'), '--out', join(dir, 'o.npy')], {
    timeoutMs: 30_000,
  });
  assertBadInput(t, r, '--v', /not a regular file \(a device\)/);
});
