/**
 * Format 2 → 3: format 3 lets a pool stripe its blocks over several data
 * files (the pool record's `dataFiles`, data-layout.ts), which a format-2
 * build would read as one file and so get wrong: the version is what makes
 * it refuse such a pool. A format-2 pool has one data file; it stays one
 * (`dataFiles` absent), so the step changes only the record's version, in one
 * LMDB transaction. No data moves.
 * Cost: one small write transaction.
 */
import { DB, META_POOL } from '../../keys';
import type { MetadataStore } from '../../metadata-store';
import type { PoolRecord } from '../../records';

export const FROM_VERSION = 2;
export const TO_VERSION = 3;

export function migrateToFormat3(store: MetadataStore, record: PoolRecord): PoolRecord {
  const migrated: PoolRecord = { ...record, formatVersion: TO_VERSION };
  store.transaction('migrate pool to format 3', () => {
    store.db(DB.meta).putSync(META_POOL, migrated);
  });
  return migrated;
}
