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
import { libcFunction } from '../../native/libc';
import { deviceStack } from './block-device-overlap';

const ATTRIBUTE = 'user.snapsync.pool';
/** A uuid's length, and room to spare: a longer value is not ours. */
const MAX_VALUE = 64;

type GetXattr = (path: string, name: string, value: Buffer, size: number) => number;
type SetXattr = (path: string, name: string, value: Buffer, size: number, flags: number) => number;
type RemoveXattr = (path: string, name: string) => number;

export function dataOwner(file: string): string | null {
  const get = libcFunction(
    'intptr_t getxattr(const char *, const char *, _Out_ uint8_t *, size_t)',
  ) as GetXattr | null;
  if (!get) return null;
  const value = Buffer.alloc(MAX_VALUE);
  const n = get(file, ATTRIBUTE, value, value.length);
  // Not written (ENODATA), a filesystem without user attributes, a value too long to be ours: nothing known.
  return n < 0 ? null : value.subarray(0, n).toString('utf8');
}

/** Writes `uuid` as the owner of `file`; false where the filesystem or host cannot keep it. */
export function markDataOwner(file: string, uuid: string): boolean {
  const set = libcFunction(
    'int setxattr(const char *, const char *, const uint8_t *, size_t, int)',
  ) as SetXattr | null;
  if (!set) return false;
  const value = Buffer.from(uuid, 'utf8');
  return set(file, ATTRIBUTE, value, value.length, 0) === 0;
}

/** Takes the mark back (a create that failed after marking a file it did not make). */
export function clearDataOwner(file: string): void {
  const remove = libcFunction('int removexattr(const char *, const char *)') as RemoveXattr | null;
  remove?.(file, ATTRIBUTE);
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
