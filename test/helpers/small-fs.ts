/**
 * A small filesystem of its own (a tmpfs the test mounts; tests run as root
 * here and in CI), so a test can fill the *host* filesystem under a pool, or
 * make it read-only.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './tmp';

export interface SmallFs {
  dir: string;
  /** Fills what is left with a file outside the pool (returns its path). */
  fillWith(name: string): string;
  freeBytes(): number;
  /** Remounts it read-only: what the kernel does on disk errors, or an operator's `ro` mount (EROFS on writes). */
  readOnly(): void;
  unmount(): void;
}

export function mountSmallFs(bytes: number): SmallFs {
  const dir = tempDir('snapsync-smallfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
  const freeBytes = () => {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  };
  return {
    dir,
    freeBytes,
    fillWith(name) {
      const file = path.join(dir, name);
      const fd = fs.openSync(file, 'w');
      const chunk = Buffer.alloc(64 * 1024, 0xee);
      try {
        for (;;) fs.writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        fs.closeSync(fd);
      }
      return file;
    },
    readOnly() {
      execFileSync('mount', ['-o', 'remount,ro', dir]);
    },
    unmount() {
      execFileSync('umount', ['-l', dir]);
    },
  };
}
