/** A bad command line: the CLI prints the message and exits with EXIT.USAGE (2). */
export class UsageError extends Error {
  readonly code = 'USAGE';

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Errors yargs raises itself (unknown options, failed coercions) are usage errors too. */
export function isUsageError(err: unknown): err is Error {
  return err instanceof UsageError || (err instanceof Error && err.name === 'YError');
}
