/**
 * A data file or raw device is one pool's alone: its agent holds an
 * exclusive claim on it for as long as it has it open, so a second pool
 * made on the same file or device (init --data) cannot open it and write
 * over the first pool's blocks.
 *
 * A block device is opened with O_EXCL: the kernel's exclusive claim, on
 * the device itself, so every node of it (another mknod, /dev/disk/by-id/…)
 * is refused while it is held, and so is a device that is mounted or part
 * of an LVM volume or RAID array. A regular file gets an exclusive flock
 * (file-lock.ts) on the descriptor the pool reads and writes through; a loop
 * device's backing file too (`claimBackingFiles`), on a descriptor of its own.
 * Other opens (the O_DIRECT descriptor, NBD threads) take no claim.
 *
 * Contract: the open descriptor; a file or device claimed elsewhere throws
 * an error with code EBUSY; any other failure throws the open's errno error.
 */
import * as fs from 'node:fs';
import { deviceStack } from './block-device-overlap';
import { lockExclusive } from './file-lock';

const { O_RDWR, O_CREAT, O_TRUNC, O_EXCL } = fs.constants;

export function openClaimed(path: string, flags: 'r+' | 'w+'): number {
  const create = flags === 'w+' ? O_CREAT | O_TRUNC : 0;
  const device = !create && isBlockDevice(path);
  const fd = fs.openSync(path, O_RDWR | create | (device ? O_EXCL : 0), 0o644);
  if (device) return fd;
  try {
    if (!lockExclusive(fd)) throw claimedElsewhere(path);
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * For a loop device (or a device stacked on one): an exclusive flock on each backing file, held
 * through the descriptors returned (close them to let go). The kernel's O_EXCL claim is on the
 * device; without this, `init --data` on the file behind it would not see it in use.
 * A backing file claimed elsewhere throws EBUSY (nothing stays open).
 */
export function claimBackingFiles(rdev: number): number[] {
  const held: number[] = [];
  try {
    for (const file of deviceStack(rdev).backingFiles) {
      // Gone or renamed since the loop was set up: nothing to claim by that name.
      if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
      const fd = fs.openSync(file, 'r');
      held.push(fd);
      if (!lockExclusive(fd)) throw claimedElsewhere(file);
    }
    return held;
  } catch (err) {
    for (const fd of held) fs.closeSync(fd);
    throw err;
  }
}

/** Whether `path` can be claimed now (nothing else holds it); throws what `openClaimed` would. */
export function checkUnclaimed(path: string): void {
  fs.closeSync(openClaimed(path, 'r+'));
}

function isBlockDevice(path: string): boolean {
  try {
    return fs.statSync(path).isBlockDevice();
  } catch {
    return false; // the open names the error
  }
}

function claimedElsewhere(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EBUSY: ${path} is claimed by another open file`), { code: 'EBUSY' });
}
