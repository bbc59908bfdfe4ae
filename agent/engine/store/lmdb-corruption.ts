/**
 * LMDB's own errors that say the metadata file is damaged (a page it looked
 * for is missing or of the wrong kind), as CORRUPT: a client or operator
 * seeing one must stop and recover the metadata, not retry or report a bug.
 * The walk before open (metadata-file-check.ts) finds damage in the pages it
 * reaches; these are for what gets past it (damage made while the pool is
 * open, or a key order only LMDB's searches notice).
 */
import { CORRUPT, isSnapsyncError, type SnapsyncError } from '../errors';

/** lmdb.h's codes for a damaged file, and for a transaction an earlier one of them ended. */
const CORRUPTION = new Map<number, string>([
  [-30797, 'MDB_PAGE_NOTFOUND'],
  [-30796, 'MDB_CORRUPTED'],
  [-30793, 'MDB_INVALID'],
  [-30782, 'MDB_BAD_TXN'],
  [-30778, 'MDB_BAD_CHECKSUM'],
]);

/** What an operator does about it (docs/operator-guide.md has the steps). */
export const METADATA_RECOVERY =
  'stop the agent and put back a copy of <pool>/meta/ (see "A damaged metadata file" in the operator guide)';

/** `err` as CORRUPT if it is LMDB saying the metadata file is damaged, else null. */
export function lmdbCorruption(err: unknown, file = '<pool>/meta/data.mdb'): SnapsyncError | null {
  if (isSnapsyncError(err)) return null;
  const code = (err as { code?: unknown })?.code;
  const message = String((err as Error)?.message ?? err);
  // lmdb-js sets the code as a number; its message starts with the name (mdb_strerror).
  const name = typeof code === 'number' ? CORRUPTION.get(code) : undefined;
  const named = [...CORRUPTION.values()].find((n) => message.startsWith(`${n}:`));
  const lmdb = name ?? named;
  if (lmdb === undefined) return null;
  return CORRUPT(`pool metadata ${file} is damaged (LMDB: ${message}): ${METADATA_RECOVERY}`, {
    path: file,
    lmdb,
  });
}
