/**
 * Format 3 → 4: format 4 may record that an entry owns only some sub-blocks
 * of its block (`map-masks`, sub-block.ts), which a format-3 build would read
 * whole, stale bytes included: the version is what makes it refuse such a
 * pool. A format-3 pool has no partial entries, so the step changes only the
 * record's version, in one LMDB transaction. No entry or data moves.
 * Cost: one small write transaction.
 */
import { DB, META_POOL } from '../../keys';
import type { MetadataStore } from '../../metadata-store';
import type { PoolRecord } from '../../records';

export const FROM_VERSION = 3;
export const TO_VERSION = 4;

export function migrateToFormat4(store: MetadataStore, record: PoolRecord): PoolRecord {
  const migrated: PoolRecord = { ...record, formatVersion: TO_VERSION };
  store.transaction('migrate pool to format 4', () => {
    store.db(DB.meta).putSync(META_POOL, migrated);
  });
  return migrated;
}
