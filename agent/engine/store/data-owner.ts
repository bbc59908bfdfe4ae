/**
 * Which pool a data file belongs to, written on the file itself (the
 * extended attribute `user.snapsync.pool`, the pool's uuid): so a stopped
 * pool's data file is known as such by `init --data` (a second pool would
 * write over the first one's blocks), and a pool whose data file was given
 * to another pool since refuses to open instead of reading the other's data.
 *
 * A running pool is also known by its claim (data-claim.ts); this is what
 * holds while none runs. Regular files only: a block device node's
 * attributes belong to the node, not to the device; a loop device's backing
 * file is marked instead (`markedFiles`).
 *
 * Contract: `dataOwner` is the uuid or null (none written, no xattr support,
 * no koffi); `markDataOwner` writes it where it can and says whether it did.
 * Cost: one system call each.
 */
import * as fs from 'node:fs';
import { deviceStack } from './block-device-overlap';
import { readAttribute, removeAttribute, writeAttribute } from './xattr';

const ATTRIBUTE = 'user.snapsync.pool';

export function dataOwner(file: string): string | null {
  return readAttribute(file, ATTRIBUTE);
}

/** Writes `uuid` as the owner of `file`; false where the filesystem or host cannot keep it. */
export function markDataOwner(file: string, uuid: string): boolean {
  return writeAttribute(file, ATTRIBUTE, uuid);
}

/** Takes the mark back (a create that failed after marking a file it did not make). */
export function clearDataOwner(file: string): void {
  removeAttribute(file, ATTRIBUTE);
}

/** The files that carry the mark for a pool's data paths: each regular file, and a loop device's backing files. */
export function markedFiles(paths: string[]): string[] {
  return paths.flatMap((p) => {
    const st = fs.statSync(p);
    if (st.isFile()) return [p];
    if (!st.isBlockDevice()) return [];
    return deviceStack(st.rdev).backingFiles.filter((f) =>
      fs.statSync(f, { throwIfNoEntry: false })?.isFile(),
    );
  });
}
