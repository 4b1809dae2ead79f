import { InputError } from '@longattn/attention';

function blockSize(value: number | undefined, fallback: number, argument: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > 1 << 20)
    throw new InputError(argument, `expected an integer in 1..1048576, got ${value}`);
  return value;
}

/** InputError (`--block-q` / `--block-k`) unless both are integers in 1 … 1048576 (e.g. read back from a manifest). */
export function checkBlocks(blocks: { blockQ: number; blockK: number }): void {
  blockSize(blocks.blockQ, 1, '--block-q');
  blockSize(blocks.blockK, 1, '--block-k');
}

/** Tile sizes: the request's (--block-q / --block-k) or the backend's defaults. */
export function resolveBlocks(
  request: { blockQ?: number; blockK?: number },
  defaults: { blockQ: number; blockK: number },
): { blockQ: number; blockK: number } {
  return {
    blockQ: blockSize(request.blockQ, defaults.blockQ, '--block-q'),
    blockK: blockSize(request.blockK, defaults.blockK, '--block-k'),
  };
}
