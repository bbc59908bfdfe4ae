/**
 * One process at a time per pool. A lock file holds the owner's pid and its
 * kernel start time (so a recycled pid is not mistaken for the owner); a lock
 * left by a dead process (SIGKILL, power loss) is taken over.
 * Within one process a registry refuses a second open of the same pool.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { POOL_LOCKED } from '../errors';

const openInThisProcess = new Set<string>();

interface LockContent {
  pid: number;
  start: string;
}

function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime) comes after the ")" that closes the command name.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(lock: LockContent): boolean {
  const start = processStartTime(lock.pid);
  return start !== null && start === lock.start;
}

export class PoolLock {
  private constructor(
    private readonly file: string,
    private readonly key: string,
  ) {}

  static acquire(dir: string): PoolLock {
    const key = fs.realpathSync(dir);
    if (openInThisProcess.has(key)) throw POOL_LOCKED(dir, `this process (pid ${process.pid})`);
    const file = path.join(dir, 'pool.lock');
    const mine: LockContent = { pid: process.pid, start: processStartTime(process.pid) ?? '' };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.writeFileSync(file, JSON.stringify(mine), { flag: 'wx' });
        openInThisProcess.add(key);
        return new PoolLock(file, key);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let holder: LockContent | null = null;
      try {
        holder = JSON.parse(fs.readFileSync(file, 'utf8')) as LockContent;
      } catch {
        holder = null; // half-written by a process that died: stale
      }
      if (holder && isAlive(holder)) throw POOL_LOCKED(dir, `pid ${holder.pid}`);
      // Stale: move it aside atomically so two racing openers cannot both take it.
      try {
        fs.renameSync(file, `${file}.stale.${process.pid}`);
        fs.rmSync(`${file}.stale.${process.pid}`, { force: true });
      } catch {
        /* someone else took it over first; retry */
      }
    }
    throw POOL_LOCKED(dir, 'lock file keeps changing');
  }

  release(): void {
    openInThisProcess.delete(this.key);
    try {
      fs.rmSync(this.file, { force: true });
    } catch {
      /* already gone */
    }
  }
}
