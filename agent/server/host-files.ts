/**
 * The files import reads and export writes on the agent host, opened so that
 * a client cannot reach past the allowed directories nor stall the agent:
 *
 * - the last component is looked at (lstat, no link followed) before it is
 *   opened, and only a regular file (or, with `serve --allow-block-devices`,
 *   a block device) is opened at all; FIFOs, sockets, character devices,
 *   directories and symlinks are refused before any open;
 * - every open is O_NOFOLLOW | O_NONBLOCK | O_NOCTTY (nothing blocks the
 *   event loop, even if the entry was swapped for a FIFO meanwhile), and the
 *   opened file's device/inode must be the one looked at;
 * - import refuses a regular file with more than one hard link (a link in an
 *   allowed directory may be the name of any file on that filesystem);
 * - export never writes through an existing inode: it creates a new file
 *   (O_EXCL, a temporary name in the same directory), and puts it in place
 *   with link() (no --overwrite: fails if the name exists, whatever it is) or
 *   rename() (--overwrite: only over a regular file). The one exception is a
 *   block device the operator allowed, which is written in place.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { statSize } from '../engine/store/block-device';
import { type AllowedDirs, beneath, type LocatedPath, pathNotAllowed } from './paths';
import { WireError } from './wire-error';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = fs.constants;
const SAFE = O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;

export interface ImageSource {
  fd: number;
  size: number;
  kind: 'file' | 'block';
  close(): void;
}

export interface ImageTarget {
  fd: number;
  kind: 'file' | 'block';
  /** Block device: its size (the export must fit). */
  capacity: number;
  /** Puts the written file in place (after the data was fsynced). */
  commit(): void;
  /** Removes what was written (a new file) and closes. */
  discard(): void;
}

const notRegular = (requested: string, what: string) =>
  new WireError('NOT_A_REGULAR_FILE', `"${requested}" is ${what}, not a regular file`, {
    path: requested,
    type: what,
  });

function describeType(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'a regular file';
}

/** lstat of `name` in the directory, or null when nothing is there. */
function lookAt(at: LocatedPath): fs.Stats | null {
  try {
    return fs.lstatSync(beneath(at.dirFd, at.name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw pathNotAllowed(
      at.requested,
      'unreadable',
      `cannot be examined (${(err as NodeJS.ErrnoException).code})`,
    );
  }
}

/** What may be opened: a regular file, or an allowed block device; refused otherwise (no open at all). */
function checkType(dirs: AllowedDirs, at: LocatedPath, st: fs.Stats): 'file' | 'block' {
  if (st.isFile()) return 'file';
  if (st.isBlockDevice() && dirs.blockDevices) return 'block';
  if (st.isSymbolicLink()) throw notRegular(at.requested, 'a symbolic link (links are not followed)');
  throw notRegular(
    at.requested,
    st.isBlockDevice() ? 'a block device (serve --allow-block-devices allows them)' : describeType(st),
  );
}

/** Opens `name` with `flags` (never following a link, never blocking) and checks it is what was looked at. */
function openChecked(at: LocatedPath, flags: number, seen: fs.Stats): { fd: number; st: fs.Stats } {
  let fd: number;
  try {
    fd = fs.openSync(beneath(at.dirFd, at.name), flags | SAFE);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw notRegular(at.requested, 'a symbolic link (links are not followed)');
    if (code === 'ENOENT' || code === 'ENXIO' || code === 'EISDIR')
      throw pathNotAllowed(at.requested, 'changed', 'changed while it was being opened');
    throw pathNotAllowed(at.requested, 'unreadable', `cannot be opened (${code})`);
  }
  const st = fs.fstatSync(fd);
  if (
    st.dev !== seen.dev ||
    st.ino !== seen.ino ||
    (st.mode & fs.constants.S_IFMT) !== (seen.mode & fs.constants.S_IFMT)
  ) {
    fs.closeSync(fd);
    throw pathNotAllowed(at.requested, 'changed', 'changed while it was being opened');
  }
  return { fd, st };
}

/** Opens an image to import: a regular file with one link (or an allowed block device). */
export function openImageSource(dirs: AllowedDirs, requested: string): ImageSource {
  const at = dirs.locate(requested);
  try {
    const seen = lookAt(at);
    if (seen === null) throw pathNotAllowed(requested, 'missing', 'does not exist');
    dirs.refuseProtected(requested, seen);
    const kind = checkType(dirs, at, seen);
    const { fd, st } = openChecked(at, O_RDONLY, seen);
    if (kind === 'file' && st.nlink > 1) {
      fs.closeSync(fd);
      throw pathNotAllowed(
        requested,
        'hard-linked',
        `has ${st.nlink} hard links; import copies of images, not links`,
        {
          links: st.nlink,
        },
      );
    }
    const size = statSize(st);
    return { fd, size, kind, close: () => fs.closeSync(fd) };
  } finally {
    at.close();
  }
}

/**
 * Prepares an export to `requested`: a new temporary file next to it (or the
 * allowed block device itself). No --overwrite: ALREADY_EXISTS if anything
 * has that name. --overwrite: only a regular file is replaced.
 */
export function createImageTarget(dirs: AllowedDirs, requested: string, overwrite: boolean): ImageTarget {
  const at = dirs.locate(requested);
  try {
    const seen = lookAt(at);
    if (seen !== null) dirs.refuseProtected(requested, seen);
    if (seen !== null && !overwrite)
      throw new WireError(
        'ALREADY_EXISTS',
        `"${requested}" exists (pass overwrite, CLI --overwrite, to replace a regular file)`,
        {
          path: requested,
          type: describeType(seen),
        },
      );
    if (seen !== null && checkType(dirs, at, seen) === 'block') {
      const { fd, st } = openChecked(at, O_WRONLY, seen);
      at.close();
      return {
        fd,
        kind: 'block',
        capacity: statSize(st),
        commit: () => fs.closeSync(fd),
        discard: () => fs.closeSync(fd),
      };
    }
    return newFileTarget(at, overwrite);
  } catch (err) {
    at.close();
    throw err;
  }
}

function newFileTarget(at: LocatedPath, overwrite: boolean): ImageTarget {
  const temp = `.snapsync-export-${randomBytes(8).toString('hex')}.tmp`;
  const tempPath = beneath(at.dirFd, temp);
  const finalPath = beneath(at.dirFd, at.name);
  const fd = fs.openSync(tempPath, O_WRONLY | O_CREAT | O_EXCL | SAFE, 0o600);
  let open = true;
  const closeAll = () => {
    if (open) fs.closeSync(fd);
    open = false;
    at.close();
  };
  return {
    fd,
    kind: 'file',
    capacity: Number.POSITIVE_INFINITY,
    commit: () => {
      try {
        if (overwrite) {
          // Replaces the name, never the inode it named (a hard link to a file outside stays as it was).
          const now = lookAt(at);
          if (now !== null && !now.isFile()) throw notRegular(at.requested, describeType(now));
          try {
            fs.renameSync(tempPath, finalPath);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST')
              throw notRegular(at.requested, 'a directory');
            throw err;
          }
        } else {
          // link() fails if the name exists in any form, a dangling symlink included: never a replace.
          try {
            fs.linkSync(tempPath, finalPath);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'EEXIST')
              throw new WireError('ALREADY_EXISTS', `"${at.requested}" appeared during the export`, {
                path: at.requested,
              });
            throw err;
          }
          fs.unlinkSync(tempPath);
        }
        fs.fsyncSync(at.dirFd);
      } catch (err) {
        try {
          fs.unlinkSync(tempPath);
        } catch {}
        throw err;
      } finally {
        closeAll();
      }
    },
    discard: () => {
      try {
        fs.unlinkSync(tempPath);
      } catch {}
      closeAll();
    },
  };
}
