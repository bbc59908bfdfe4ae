/**
 * How a command that works on a pool directory without an agent (`init`,
 * `fsck --pool`, `migrate --pool`) reports a failure: the error's code and message
 * (JSON on stdout with --json, a line on stderr otherwise), exit code 1.
 */
import { isSnapsyncError, lmdbCorruption } from '../engine';
import { EXIT } from './exit-codes';

export function reportPoolDirError(thrown: unknown, json: boolean | undefined): void {
  const err = lmdbCorruption(thrown) ?? thrown;
  const code = isSnapsyncError(err) ? err.code : 'INTERNAL';
  const message = (err as Error).message;
  const details = isSnapsyncError(err) ? err.details : {};
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, message, details } }, null, 2)}\n`);
  else process.stderr.write(`error: [${code}] ${message}\n`);
  process.exitCode = EXIT.OPERATION_FAILED;
}
