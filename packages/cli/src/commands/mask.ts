import type { Command } from 'commander';
import { MAX_MASK_CELLS } from '@longattn/attention';
import { InputError } from '@longattn/tensor';
import { blockLayout } from '../block-layouts.ts';
import { writeBlockMask } from '../block-mask.ts';
import { parseChoice, parseInteger } from '../parse.ts';

interface MaskFlags {
  n: number;
  nK?: number;
  block: number;
  heads: number;
  window: number;
  globals: number;
  random: number;
  seed: number;
  stride: number;
  out: string;
}

/** `longattn mask bigbird|longformer|strided [--n N] [--block B] … --out M.npy`: block masks for --block-mask. */
export function register(program: Command): void {
  program
    .command('mask')
    .description('write a block mask .npy for --block-mask (BigBird, Longformer, strided layouts)')
    .argument('<kind>', 'bigbird | longformer | strided', parseChoice('<kind>', ['bigbird', 'longformer', 'strided'] as const))
    .option('--n <n>', 'queries (and keys, unless --n-k)', parseInteger('--n', 1, 1 << 30), 4096)
    .option('--n-k <n>', 'keys, when they differ from --n', parseInteger('--n-k', 1, 1 << 30))
    .option('--block <b>', 'block size (run with --mask-block B)', parseInteger('--block', 1, 1 << 30), 64)
    .option('--heads <h>', 'heads: > 1 writes [H, nQb, nKb] (BigBird: random blocks per head)', parseInteger('--heads', 1, 4096), 1)
    .option('--window <w>', 'blocks each side of the diagonal', parseInteger('--window', 0, 1 << 30), 1)
    .option('--globals <g>', 'global blocks (the first g): bigbird, longformer', parseInteger('--globals', 0, 1 << 30), 1)
    .option('--random <r>', 'random key blocks per block row (bigbird)', parseInteger('--random', 0, 1 << 30), 3)
    .option('--seed <s>', 'seed of the random blocks', parseInteger('--seed', 0, 2 ** 32 - 1), 0)
    .option('--stride <s>', 'strided: every s-th block back from the diagonal', parseInteger('--stride', 1, 1 << 30), 8)
    .requiredOption('--out <path>', 'output mask .npy (uint8)')
    .action((kind: 'bigbird' | 'longformer' | 'strided', flags: MaskFlags) => {
      const nQb = Math.ceil(flags.n / flags.block);
      const nKb = Math.ceil((flags.nK ?? flags.n) / flags.block);
      if (flags.heads * nQb * nKb > MAX_MASK_CELLS) {
        throw new InputError('--block', `${flags.heads * nQb * nKb} cells, at most ${MAX_MASK_CELLS}: use larger blocks`);
      }
      const cells = blockLayout(kind, { ...flags, nQb, nKb });
      writeBlockMask(flags.out, flags.heads > 1 ? [flags.heads, nQb, nKb] : [nQb, nKb], cells);
      let on = 0;
      for (const c of cells) on += c;
      console.log(
        `${flags.out}: ${kind} [${flags.heads > 1 ? `${flags.heads},` : ''}${nQb},${nKb}] blocks of ${flags.block}, ${((100 * on) / cells.length).toFixed(1)}% visible`,
      );
    });
}
