/**
 * One process at a time per pool, enforced by the kernel: an exclusive
 * flock(2) on `<pool>/pool.lock`, which the kernel drops when the holder's
 * last file descriptor closes, so a process that dies (SIGKILL, OOM, power
 * loss) frees the pool at once and nothing is ever "stale".
 *
 * file-lock.ts takes it (libc's flock through koffi, or util-linux's `flock`
 * on our descriptor): it belongs to the open file description our fd keeps
 * and is released when we close that fd (or die). Node opens every fd
 * close-on-exec, so no child inherits it.
 *
 * Why not the others: the pid-file scheme this replaces let two processes in
 * (an empty file still being written looked stale; a rename could move another
 * process's file). fs-ext builds a native addon at install (node-gyp and a
 * compiler on every host); its prebuilt fork is a little-used one-person fork. `node:sqlite` could hold an fcntl lock (measured
 * 12 ms), but it is absent from Node 20 and 22.4, flagged before 22.13, and
 * prints an ExperimentalWarning on 24.9; fcntl locks are also
 * per process (another open+close of the file in this process would drop
 * them). util-linux is on every Linux host the agent runs on.
 *
 * The lock file is never removed or renamed (a second inode would be a
 * second lock), except by a create that fails: it removes what it made,
 * the lock file too, while it still holds the lock. The holder's pid is written into it only to name the holder in
 * POOL_LOCKED. Within one process, a registry refuses a second open with a
 * clearer message (flock would refuse it too: it is per open description).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IO_ERROR, POOL_LOCKED } from '../errors';
import { lockExclusive } from './file-lock';

const openInThisProcess = new Set<string>();

function holderOf(fd: number): string {
  try {
    const text = fs.readFileSync(fd, 'utf8');
    const pid = (JSON.parse(text) as { pid?: unknown }).pid;
    return typeof pid === 'number' ? `pid ${pid}` : 'another process';
  } catch {
    return 'another process';
  }
}

export class PoolLock {
  private constructor(
    private fd: number,
    private readonly key: string,
  ) {}

  static acquire(dir: string): PoolLock {
    const key = fs.realpathSync(dir);
    if (openInThisProcess.has(key)) throw POOL_LOCKED(dir, `this process (pid ${process.pid})`);
    const file = path.join(dir, 'pool.lock');
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    } catch (err) {
      throw IO_ERROR('open pool lock', err, { path: file });
    }
    try {
      let locked: boolean;
      try {
        locked = lockExclusive(fd);
      } catch (err) {
        throw IO_ERROR('lock pool', err, { path: file });
      }
      if (!locked) throw POOL_LOCKED(dir, holderOf(fd));
      // Ours now: name ourselves for the next process that is refused.
      fs.ftruncateSync(fd, 0);
      fs.writeSync(fd, JSON.stringify({ pid: process.pid }), 0);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    openInThisProcess.add(key);
    return new PoolLock(fd, key);
  }

  /** Closing the descriptor is what drops the kernel lock. */
  release(): void {
    if (this.fd < 0) return;
    openInThisProcess.delete(this.key);
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}
