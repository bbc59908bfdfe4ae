/**
 * LMDB's own errors that say the metadata file is damaged (a page it looked
 * for is missing or of the wrong kind), or that its environment is unusable
 * (MDB_PANIC), as CORRUPT: a client or operator seeing one must stop and
 * recover the metadata, not retry or report a bug.
 * The walk before open (metadata-file-check.ts) finds damage in the pages it
 * reaches; these are for what gets past it (damage made while the pool is
 * open).
 *
 * Not here, on purpose: MDB_VERSION_MISMATCH (the data file's version is
 * checked before open; from LMDB it means a lock.mdb of another LMDB build,
 * which restoring meta/ would not fix), and the codes of a misuse or a limit
 * (MDB_INCOMPATIBLE, MDB_BAD_RSLOT, MDB_BAD_VALSIZE, MDB_BAD_DBI, MDB_PROBLEM,
 * MDB_*_FULL, MDB_MAP_RESIZED): bugs or resources, reported as they are.
 */
import { CORRUPT, isSnapsyncError, type SnapsyncError } from '../errors';

/** What an operator does about it (docs/operator-guide.md has the steps): meta/ alone from another moment maps blocks that hold other data since. */
export const METADATA_RECOVERY =
  'stop the agent and put back <pool>/meta/ together with the data files, all from one backup taken with the agent stopped (see "A damaged metadata file" in the operator guide)';

/** After MDB_PANIC the file keeps its last commit (LMDB writes the old meta back), so a restart comes first. */
const PANIC_RECOVERY = `restart the agent (LMDB keeps the last committed transaction) and run fsck; if the pool does not open or fsck finds damage, ${METADATA_RECOVERY}`;

/** lmdb.h's codes for a damaged file or an unusable environment, and for a transaction an earlier one of them ended. */
const CORRUPTION = new Map<number, { name: string; says: string; recovery: string }>([
  [-30797, { name: 'MDB_PAGE_NOTFOUND', says: 'is damaged', recovery: METADATA_RECOVERY }],
  [-30796, { name: 'MDB_CORRUPTED', says: 'is damaged', recovery: METADATA_RECOVERY }],
  // A write of a meta page failed (or a writer died holding LMDB's lock): every transaction after it is refused.
  [-30795, { name: 'MDB_PANIC', says: 'cannot be used until the agent restarts', recovery: PANIC_RECOVERY }],
  [-30793, { name: 'MDB_INVALID', says: 'is damaged', recovery: METADATA_RECOVERY }],
  [-30782, { name: 'MDB_BAD_TXN', says: 'is damaged', recovery: METADATA_RECOVERY }],
  [-30778, { name: 'MDB_BAD_CHECKSUM', says: 'is damaged', recovery: METADATA_RECOVERY }],
]);

/** `err` as CORRUPT if it is LMDB saying the metadata file is damaged or unusable, else null. */
export function lmdbCorruption(err: unknown, file = '<pool>/meta/data.mdb'): SnapsyncError | null {
  if (isSnapsyncError(err)) return null;
  const code = (err as { code?: unknown })?.code;
  const message = String((err as Error)?.message ?? err);
  // lmdb-js sets the code as a number; its message starts with the name (mdb_strerror),
  // or carries it after another error's text (LMDB appends its last error).
  const kind =
    (typeof code === 'number' ? CORRUPTION.get(code) : undefined) ??
    [...CORRUPTION.values()].find((k) => new RegExp(`(^|: )${k.name}:`).test(message));
  if (kind === undefined) return null;
  return CORRUPT(`pool metadata ${file} ${kind.says} (LMDB: ${message}): ${kind.recovery}`, {
    path: file,
    lmdb: kind.name,
  });
}
