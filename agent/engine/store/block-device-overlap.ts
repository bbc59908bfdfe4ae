/**
 * Which block devices share bytes with a given one, read from sysfs, so that
 * protecting a pool's data device also protects every other device node a
 * client could read or write those bytes through:
 * - the device itself (any node with its device number);
 * - what holds it: the whole disk a partition is on, and the devices under a
 *   device-mapper or md device (`slaves/`), each in turn with its whole disk;
 * - what is built on it (`holders/`: an LVM volume or a dm-crypt mapping
 *   over the pool's partition), recursively;
 * - for each loop device among them, its backing file (`loop/backing_file`):
 *   the kernel links no holder from a loop device to what it reads, so the
 *   caller compares that file (by inode) with the pool's files, and follows
 *   it when it is itself a block device (a loop over the data device).
 * A sibling partition, or another volume of the same volume group, holds none
 * of the device's bytes and is not included.
 * Cost: a few sysfs reads at start-up, and again for each block device an
 * import or export names (paths.ts: a mapping stacked on the data device
 * since start-up is found then).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deviceId } from './block-device';

/** The sysfs directory of a block device (`/sys/devices/…/block/…`), or null where sysfs does not list it. */
function sysfsDir(sysfs: string, id: string): string | null {
  try {
    return fs.realpathSync(path.join(sysfs, 'dev', 'block', id));
  } catch {
    return null;
  }
}

function readId(dir: string): string | null {
  try {
    return fs.readFileSync(path.join(dir, 'dev'), 'utf8').trim();
  } catch {
    return null;
  }
}

/** The devices linked from `dir/<list>` (`slaves` or `holders`), as sysfs directories. */
function linked(dir: string, list: 'slaves' | 'holders'): string[] {
  try {
    return fs.readdirSync(path.join(dir, list)).map((name) => fs.realpathSync(path.join(dir, list, name)));
  } catch {
    return [];
  }
}

/** The file a loop device at sysfs directory `dir` reads and writes, or null (not a loop device, none attached). */
function loopBackingFile(dir: string): string | null {
  try {
    const file = fs.readFileSync(path.join(dir, 'loop', 'backing_file'), 'utf8').replace(/\n$/, '');
    // A deleted backing file has no name left to compare: " (deleted)" is what the kernel appends.
    return file === '' || file.endsWith(' (deleted)') ? null : file;
  } catch {
    return null;
  }
}

/** The devices sharing bytes with one device, and the files loop devices among them are backed by. */
export interface DeviceStack {
  /** `major:minor` of each device sharing bytes with it (itself included). */
  devices: Set<string>;
  /** The backing file of each loop device among them, as the kernel names it. */
  backingFiles: string[];
}

/** Every device that shares bytes with the device `rdev` (itself included), and the loop backing files among them; `sysfs`: a test seam. */
export function deviceStack(rdev: number, sysfs = '/sys'): DeviceStack {
  const own = deviceId(rdev);
  const found = new Set([own]);
  const backingFiles: string[] = [];
  const start = sysfsDir(sysfs, own);
  if (start === null) return { devices: found, backingFiles };
  const visit = (from: string, direction: 'slaves' | 'holders') => {
    const queue = [from];
    const seen = new Set<string>();
    for (let dir = queue.pop(); dir !== undefined; dir = queue.pop()) {
      if (seen.has(dir)) continue;
      seen.add(dir);
      const id = readId(dir);
      if (id) found.add(id);
      const backing = loopBackingFile(dir);
      if (backing !== null && !backingFiles.includes(backing)) backingFiles.push(backing);
      if (direction === 'slaves' && fs.existsSync(path.join(dir, 'partition'))) queue.push(path.dirname(dir));
      queue.push(...linked(dir, direction));
    }
  };
  visit(start, 'slaves');
  visit(start, 'holders');
  return { devices: found, backingFiles };
}
