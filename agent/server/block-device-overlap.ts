/**
 * Which block devices share bytes with a given one, read from sysfs, so that
 * protecting a pool's data device also protects every other device node a
 * client could read or write those bytes through:
 * - the device itself (any node with its device number);
 * - what holds it: the whole disk a partition is on, and the devices under a
 *   device-mapper or md device (`slaves/`), each in turn with its whole disk;
 * - what is built on it (`holders/`: an LVM volume or a dm-crypt mapping
 *   over the pool's partition), recursively.
 * A sibling partition, or another volume of the same volume group, holds none
 * of the device's bytes and is not included.
 * Cost: a few sysfs reads at start-up, and again for each block device an
 * import or export names (paths.ts: a mapping stacked on the data device
 * since start-up is found then).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deviceId } from '../engine/store/block-device';

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

/** `major:minor` of every device that shares bytes with the device `rdev` (itself included); `sysfs`: a test seam. */
export function overlappingDevices(rdev: number, sysfs = '/sys'): Set<string> {
  const own = deviceId(rdev);
  const found = new Set([own]);
  const start = sysfsDir(sysfs, own);
  if (start === null) return found;
  const visit = (from: string, direction: 'slaves' | 'holders') => {
    const queue = [from];
    const seen = new Set<string>();
    for (let dir = queue.pop(); dir !== undefined; dir = queue.pop()) {
      if (seen.has(dir)) continue;
      seen.add(dir);
      const id = readId(dir);
      if (id) found.add(id);
      if (direction === 'slaves' && fs.existsSync(path.join(dir, 'partition'))) queue.push(path.dirname(dir));
      queue.push(...linked(dir, direction));
    }
  };
  visit(start, 'slaves');
  visit(start, 'holders');
  return found;
}
