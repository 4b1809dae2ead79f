import { InputError } from '@longattn/attention';

function blockSize(value: number | undefined, fallback: number, argument: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > 1 << 20)
    throw new InputError(argument, `expected an integer in 1..1048576, got ${value}`);
  return value;
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
