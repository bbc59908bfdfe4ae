/**
 * What Pool.create checks before it creates anything, and how it takes back
 * what it created when it fails after all: a failed create leaves the host
 * as it found it, and a create never takes over files that exist.
 *
 * - The pool directory is new or empty (`lost+found` aside: a filesystem
 *   mounted there for the pool has one). A file already there could be one
 *   the pool would write into (`data`, `data.N`, `meta`, `pool.lock`).
 * - A named data file or device (`dataPath`) exists, is a regular file or
 *   block device, is no file of a pool directory, has no other name (a hard
 *   link), is not held by another pool's agent (store/data-claim.ts), and,
 *   for a loop device, its backing file passes the same; it holds no data unless
 *   `overwriteData` says to discard it: a regular file has no block
 *   allocated (empty, or sparse as `truncate -s` makes it), a block device
 *   reads zeros in its first MiB.
 *
 * Errors: INVALID_ARGUMENT with `details.reason` (below), POOL_LOCKED for a
 * data file or device in use (`details.dataInUse`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DATA_IN_USE, INVALID_ARGUMENT, IO_ERROR } from './errors';
import { statSize } from './store/block-device';
import { deviceStack } from './store/block-device-overlap';
import { checkUnclaimed } from './store/data-claim';
import { dataOwner } from './store/data-owner';

/** What a new filesystem puts in its root: no file of a pool's. */
const FOREIGN_ALLOWED = new Set(['lost+found']);

/** What was there before a create: the entries of the pool directory (none if it was missing). */
export interface BeforeCreate {
  existed: boolean;
  entries: Set<string>;
}

export function checkPoolDirectory(dir: string): BeforeCreate {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw IO_ERROR('stat pool directory', err, { path: dir });
    // A link to nowhere: mkdir would fail on the link itself, with a bare ENOENT.
    if (fs.lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink())
      throw INVALID_ARGUMENT(`${dir} is a symbolic link to ${fs.readlinkSync(dir)}, which does not exist`, {
        argument: 'dir',
        reason: 'dangling-link',
      });
    return { existed: false, entries: new Set() };
  }
  if (!st.isDirectory())
    throw INVALID_ARGUMENT(`${dir} exists and is not a directory`, {
      argument: 'dir',
      reason: 'not-a-directory',
    });
  const entries = fs.readdirSync(dir);
  if (entries.includes('meta'))
    throw INVALID_ARGUMENT(`${dir} already holds a pool`, { argument: 'dir', reason: 'holds-pool' });
  const foreign = entries.filter((name) => !FOREIGN_ALLOWED.has(name)).sort();
  if (foreign.length > 0)
    throw INVALID_ARGUMENT(
      `${dir} is not empty (${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', …' : ''}): a pool is created in a new or empty directory`,
      { argument: 'dir', reason: 'not-empty', entries: foreign },
    );
  return { existed: true, entries: new Set(entries) };
}

/** Checks a named data file or device; returns its size in bytes. */
export function checkDataPath(dataPath: string, overwriteData: boolean): number {
  const invalid = (reason: string, message: string) =>
    INVALID_ARGUMENT(`data path ${dataPath} ${message}`, { argument: 'dataPath', reason, path: dataPath });
  let st: fs.Stats;
  try {
    st = fs.statSync(dataPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw invalid(
        'missing',
        `does not exist: create the file first (e.g. truncate -s 500G ${dataPath}) or name a block device`,
      );
    throw IO_ERROR('stat data path', err, { path: dataPath });
  }
  if (!st.isFile() && !st.isBlockDevice())
    throw invalid('not-file-or-device', 'is not a regular file or block device');
  checkNotAnotherPools(dataPath, st, overwriteData, invalid);
  // A loop device reads and writes its backing file: that file must pass the same checks
  // (a loop over a running pool's data file, or over a file of a pool directory, is that file).
  if (st.isBlockDevice())
    for (const backing of deviceStack(st.rdev).backingFiles) {
      const backingSt = fs.statSync(backing, { throwIfNoEntry: false });
      if (backingSt?.isFile())
        checkNotAnotherPools(backing, backingSt, overwriteData, (reason, message) =>
          invalid(reason, `is a loop device over ${backing}, which ${message}`),
        );
    }
  const held = overwriteData ? null : dataHeld(dataPath, st);
  if (held !== null)
    throw invalid(
      'holds-data',
      `holds data (${held}): a new pool would write over it; pass overwriteData (init --overwrite-data) to discard it`,
    );
  return statSize(st);
}

/**
 * Refuses a file or device another pool has: held by a running agent (POOL_LOCKED), a file of a
 * pool directory, or a file with other names (a hard link may be a pool's file: its data, its
 * metadata, its reserve).
 */
function checkNotAnotherPools(
  file: string,
  st: fs.Stats,
  overwriteData: boolean,
  invalid: (reason: string, message: string) => Error,
): void {
  try {
    checkUnclaimed(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EBUSY') throw DATA_IN_USE(file);
    throw IO_ERROR('open data path', err, { path: file });
  }
  // A stopped pool holds no claim: its files are known by where they are (its directory, or meta/ in it).
  const parent = path.dirname(fs.realpathSync(file));
  for (const dir of [parent, path.dirname(parent)])
    if (fs.existsSync(path.join(dir, 'meta')) && fs.existsSync(path.join(dir, 'pool.lock')))
      throw invalid('in-pool', `is in the pool directory ${dir}: no file of a pool is another pool's data`);
  // Marked by the pool that has it (store/data-owner.ts): known even while that pool is stopped.
  const owner = st.isFile() ? dataOwner(file) : null;
  if (owner !== null && !overwriteData)
    throw invalid(
      'other-pool',
      `is the data file of pool ${owner}: a new pool would write over its blocks; pass overwriteData (init --overwrite-data) if that pool is gone`,
    );
  if (st.isFile() && st.nlink > 1)
    throw invalid(
      'hard-linked',
      `has ${st.nlink} names (hard links): another may be a pool's file; give the pool a file of its own`,
    );
}

/** Bytes a device's head is read for data: where a pool's first block, a partition table, an LVM label or a filesystem's superblock lie. */
const DEVICE_HEAD = 1024 * 1024;

/** What shows that `dataPath` holds data, or null: a file's allocated blocks (a sparse file has none), a device's first MiB not all zeros. */
function dataHeld(dataPath: string, st: fs.Stats): string | null {
  if (st.isFile()) return st.blocks > 0 ? `${st.blocks * 512} bytes allocated` : null;
  const head = Buffer.alloc(DEVICE_HEAD);
  const fd = fs.openSync(dataPath, 'r');
  try {
    const n = fs.readSync(fd, head, 0, head.length, 0);
    return head.subarray(0, n).some((b) => b !== 0) ? 'its first MiB is not all zeros' : null;
  } finally {
    fs.closeSync(fd);
  }
}

/** After a failed create: removes what it made (entries that were not there before, directories it made). */
export function removeCreated(dir: string, before: BeforeCreate, firstMadeDir: string | undefined): void {
  if (firstMadeDir !== undefined) {
    fs.rmSync(firstMadeDir, { recursive: true, force: true });
    return;
  }
  if (!before.existed) return;
  for (const name of fs.readdirSync(dir))
    if (!before.entries.has(name)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
}
