/**
 * The engine's named job errors (BullMQ's idea: the class decides what happens next).
 * `retry: false` = retrying cannot help; the queue services turn those into BullMQ's
 * UnrecoverableError. Bad user input stays InputError (@longattn/tensor): exit code 2.
 */
export class JobError extends Error {
  constructor(
    message: string,
    /** Whether another attempt could succeed. */
    readonly retry = false,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The job was cancelled (by `cancel`, an aborted run, a signal). */
export class JobCancelledError extends JobError {}

/** The job failed for good; the message carries the first failure, one line. */
export class JobFailedError extends JobError {}

/** The job's record is gone (collected, cancelled and expired, or never there). */
export class JobGoneError extends JobError {}

/** A job record read back from Redis is not a manifest this build wrote (planted, corrupt, newer). */
export class BadManifestError extends JobError {}

/**
 * A queue job that is not part of the job it names (its id or tile ranges do not fit that job's
 * plan): it is rejected, and the job it names is not failed.
 */
export class StrayJobError extends JobError {}

/** A transient fault (a missing partial, a q-block count not reached yet): worth another attempt. */
export class RetryableJobError extends JobError {
  constructor(message: string) {
    super(message, true);
  }
}

/** At most `max` characters of a user-given value, JSON-quoted, with its length when cut: never echo 100 KB back. */
export function excerpt(text: string, max = 64): string {
  return text.length <= max ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, max))}… (${text.length} characters)`;
}
