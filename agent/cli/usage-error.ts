/**
 * A bad command line: the CLI prints the message and exits with EXIT.USAGE (2).
 * A refusal a script may want to tell apart (a too short token) has a code of its own, printed too.
 */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly code: string = 'USAGE',
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Errors yargs raises itself (unknown options, failed coercions) are usage errors too. */
export function isUsageError(err: unknown): err is Error {
  return err instanceof UsageError || (err instanceof Error && err.name === 'YError');
}
