/**
 * A metadata record LMDB reads but msgpack cannot decode (bytes changed inside
 * a page the open-time page check finds well-formed): CORRUPT naming the
 * record, as the page check names a page, so `serve` and `migrate --pool`
 * refuse the pool as damaged instead of failing with msgpack's own words.
 */
import { CORRUPT, type SnapsyncError } from '../errors';
import type { DbName } from './keys';
import { METADATA_RECOVERY } from './lmdb-corruption';

/** What a record of each database is called in messages (fsck's words). */
const RECORD_NAMES: Partial<Record<DbName, string>> = {
  meta: 'pool metadata record',
  containers: 'container record',
  names: 'container name record',
  snapshots: 'snapshot record',
  'snapshot-names': 'snapshot name record',
  tables: 'table record',
  free: 'free extent record',
  idempotency: 'idempotency record',
};

export function undecodableRecord(file: string, db: DbName, key: unknown, err: unknown): SnapsyncError {
  const id = typeof key === 'number' ? String(key) : JSON.stringify(key);
  const reason = String((err as Error)?.message ?? err);
  return CORRUPT(
    `pool metadata ${file} is damaged: ${RECORD_NAMES[db] ?? `${db} record`} ${id} does not decode (${reason}); "snapsync-agent fsck --pool" lists all the damage; ${METADATA_RECOVERY}`,
    { path: file, db, key: id, problem: 'record does not decode' },
  );
}
