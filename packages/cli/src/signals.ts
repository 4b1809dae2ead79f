/**
 * Ctrl-C and SIGTERM while a command runs a job. The first signal aborts the AbortSignal the
 * command handed to its engine: the local engine stops its tasks and removes its partial outputs,
 * the queue engine cancels the job it submitted. Once the job has settled the process exits 130
 * (SIGINT) or 143 (SIGTERM), one line on stderr. A job that finished before it could stop keeps
 * its complete outputs and the command ends as usual. A second signal exits at once.
 */

/** Shell convention: 128 + the signal's number. */
const EXIT_CODE = { SIGINT: 130, SIGTERM: 143 } as const;
type Handled = keyof typeof EXIT_CODE;

/** The reason the signal carries: which signal stopped the job. */
export class InterruptedError extends Error {
  override readonly name = 'InterruptedError';
  constructor(readonly signal: Handled) {
    super(`interrupted by ${signal}`);
  }
}

/** The interruptible section running now: a nested one shares its signal. */
let active: AbortSignal | undefined;

/**
 * Runs `work` with SIGINT/SIGTERM turned into an abort of the signal it gets (see above). Nested
 * calls (demo → run) share the outer signal, so a signal that came during the outer command's
 * own steps (synchronous writes finish first: handlers run between them) still stops the job.
 */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (active) return work(active);
  const controller = new AbortController();
  let received: Handled | undefined;
  const handlers = (Object.keys(EXIT_CODE) as Handled[]).map((name) => {
    const handler = () => {
      if (received !== undefined) process.exit(EXIT_CODE[received]); // asked twice: stop waiting
      received = name;
      controller.abort(new InterruptedError(name));
    };
    process.on(name, handler);
    return () => process.off(name, handler);
  });
  active = controller.signal;
  try {
    return await work(controller.signal);
  } catch (error) {
    if (received === undefined) throw error;
    // The queue engine says which job it cancelled (JobCancelledError); the local engine stopped in-process.
    const said =
      error instanceof Error && error.name === 'JobCancelledError'
        ? `${error.message} (${received})`
        : `interrupted by ${received}: the job was stopped and its partial outputs removed`;
    process.stderr.write(`longattn: ${said}\n`);
    return process.exit(EXIT_CODE[received]);
  } finally {
    active = undefined;
    for (const off of handlers) off();
  }
}
