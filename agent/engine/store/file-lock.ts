/**
 * An exclusive flock(2) on an open file, without waiting: what keeps a pool
 * to one process (pool-lock.ts) and a data file to one pool (data-claim.ts).
 *
 * flock locks belong to the open file description: the lock lasts while
 * that descriptor stays open and the kernel drops it when it closes (or the
 * process dies), so nothing is ever stale. Node has no flock API: libc's
 * flock through koffi (native/libc.ts) where it loads, else util-linux's
 * `flock -n 3` run once with our descriptor as its fd 3 (the lock it takes
 * stays with the description our fd keeps open after it exits; 4–7 ms).
 * Both are the same kernel lock, so processes using either exclude each other.
 *
 * Contract: true when the lock is ours now, false when another open
 * description holds it (in this process or another); any other failure
 * throws an Error naming its cause.
 */
import { spawnSync } from 'node:child_process';
import { lastErrno, libcFunction } from '../../native/libc';

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;
const EINTR = 4;
/** `flock`'s exit code when the lock is held elsewhere (our choice, -E). */
const CONFLICT = 75;

type Flock = (fd: number, operation: number) => number;

export function lockExclusive(fd: number): boolean {
  const flock = libcFunction('int flock(int, int)') as Flock | null;
  if (flock) {
    for (;;) {
      if (flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
      const errno = lastErrno();
      if (errno === EWOULDBLOCK) return false;
      if (errno !== EINTR) throw new Error(`flock: errno ${errno}`);
    }
  }
  const result = spawnSync(
    'flock',
    ['--exclusive', '--nonblock', '--conflict-exit-code', `${CONFLICT}`, '3'],
    {
      stdio: ['ignore', 'ignore', 'pipe', fd],
    },
  );
  if (result.status === CONFLICT) return false;
  if (result.status === 0) return true;
  throw (
    result.error ??
    new Error(String(result.stderr ?? '').trim() || `flock (util-linux): exit ${result.status}`)
  );
}
