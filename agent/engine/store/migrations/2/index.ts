/**
 * Format 1 → 2: the per-block `map` entries become per-group `map-groups`
 * records (block-map.ts), in one LMDB write transaction together with the
 * pool record's new `formatVersion`. A crash (or an error) at any point leaves
 * the pool exactly format 1 or exactly format 2: LMDB commits all or nothing.
 *
 * Refused, leaving the pool untouched: a capacity beyond what format 2 can
 * address (INVALID_ARGUMENT), a map entry that is no block number (CORRUPT:
 * `fsck --pool` reads format 1 and names it).
 * Cost: one pass over the old entries, in key order; the file grows by the new
 * records before the old pages are freed, at the commit.
 */
import { CORRUPT, INVALID_ARGUMENT } from '../../../errors';
import { encodeGroup, GROUP_BLOCKS, GROUP_SHIFT, groupKey, MAX_PHYSICAL_BLOCK } from '../../group-record';
import { DB, META_POOL } from '../../keys';
import type { MetadataStore } from '../../metadata-store';
import type { PoolRecord } from '../../records';

export const FROM_VERSION = 1;
export const TO_VERSION = 2;

export function migrateToFormat2(store: MetadataStore, record: PoolRecord): PoolRecord {
  if (record.capacityBlocks > MAX_PHYSICAL_BLOCK)
    throw INVALID_ARGUMENT(
      `pool capacity ${record.capacityBlocks} blocks exceeds format 2's ${MAX_PHYSICAL_BLOCK}: it cannot be migrated`,
      { argument: 'pool', capacityBlocks: record.capacityBlocks },
    );
  const migrated: PoolRecord = { ...record, formatVersion: TO_VERSION };
  store.transaction('migrate pool to format 2', () => {
    const groups = store.db(DB.mapGroups);
    const physicals = new Float64Array(GROUP_BLOCKS).fill(-1);
    let current: { table: number; group: number } | null = null;
    const flush = () => {
      const value = current && encodeGroup(physicals);
      if (current && value) groups.putSync(groupKey(current.table, current.group), value);
      physicals.fill(-1);
    };
    for (const { key, value } of store.entries<[number, number], number>(DB.map)) {
      const [table, block] = key;
      if (
        !Number.isInteger(table) ||
        !Number.isInteger(block) ||
        table < 0 ||
        block < 0 ||
        table > 0xffffffff ||
        block > 0xffffffff ||
        !Number.isInteger(value) ||
        value < 0 ||
        value > MAX_PHYSICAL_BLOCK
      )
        throw CORRUPT(`format-1 map entry [${String(key)}] → ${String(value)} cannot be migrated`, {
          table,
          block,
        });
      const group = block >>> GROUP_SHIFT;
      if (current === null || current.table !== table || current.group !== group) {
        flush();
        current = { table, group };
      }
      physicals[block & (GROUP_BLOCKS - 1)] = value;
    }
    flush();
    store.clear(DB.map);
    store.db(DB.meta).putSync(META_POOL, migrated);
  });
  return migrated;
}
