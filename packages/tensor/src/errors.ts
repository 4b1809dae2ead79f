/**
 * Bad user input: the message is one line naming the argument, e.g.
 * `--window: expected L,R with integers ≥ -1, got "5;3"`. Maps to exit code 2 / HTTP 4xx,
 * and to BullMQ's UnrecoverableError in workers (retrying cannot fix it).
 */
export class InputError extends Error {
  override readonly name = 'InputError';
  constructor(
    /** The argument at fault, e.g. `--window`, `--q`, `q`. */
    readonly argument: string,
    detail: string,
  ) {
    super(`${argument}: ${detail}`);
  }
}
