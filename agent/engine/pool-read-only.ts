/**
 * Opening a pool writes its files (lock, metadata, reserve, data files): a
 * pool on a read-only filesystem, or one whose files the agent's user may not
 * write, failed with a bare `IO_ERROR … EROFS` (or `… EACCES`) naming one of
 * them. Such a failure at open is POOL_READ_ONLY, saying why and what to do;
 * a directory the user cannot even reach stays IO_ERROR (pool-dir.ts), and
 * any other failure is left as it is.
 */
import { isSnapsyncError, POOL_READ_ONLY } from './errors';

const NOT_WRITABLE = new Set(['EROFS', 'EACCES', 'EPERM']);

/** `err`, or POOL_READ_ONLY when it says a file of the pool at `dir` could not be opened for writing. */
export function asPoolReadOnly(dir: string, err: unknown): unknown {
  const io = isSnapsyncError(err, 'IO_ERROR');
  const errno = io ? err.details.errno : (err as NodeJS.ErrnoException | null)?.code;
  if (typeof errno !== 'string' || !NOT_WRITABLE.has(errno)) return err;
  const file = io ? (err.details.file ?? err.details.path) : (err as NodeJS.ErrnoException).path;
  return POOL_READ_ONLY(dir, typeof file === 'string' ? file : dir, errno, err);
}
