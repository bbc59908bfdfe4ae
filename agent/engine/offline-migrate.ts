/**
 * `snapsync-agent migrate --pool DIR`: brings a pool of an older format to
 * the current one without starting an agent, so an operator chooses when it
 * happens (Pool.open migrates too, logging it: `Pool.migratedFrom`).
 *
 * Takes the pool lock (POOL_LOCKED while an agent has the pool open), refuses
 * an unknown or newer format (UNSUPPORTED_VERSION) and one whose records do
 * not all decode or whose metadata its data files say is older than they
 * are (CORRUPT, as `serve` would, before anything commits), and runs the migrations
 * (store/migrations: one LMDB transaction per format step, so a crash leaves
 * the old format or the new one, whole). Nothing else of an open is done.
 * A full host gives the metadata reserve back and tries again, as commits do.
 */
import { recordDataPaths, refuseContradictingMarks } from './data-marks';
import { CORRUPT, UNSUPPORTED_VERSION } from './errors';
import { poolMetadataDir } from './pool-dir';
import { asPoolReadOnly } from './pool-read-only';
import { CURRENT_FORMAT_VERSION, DB, FORMAT_NAME, META_POOL, SUPPORTED_FORMAT_VERSIONS } from './store/keys';
import { defaultReserveBytes, MetadataReserve } from './store/metadata-reserve';
import { MetadataStore } from './store/metadata-store';
import { migrate } from './store/migrations';
import { PoolLock } from './store/pool-lock';
import type { PoolRecord } from './store/records';

export interface MigrationResult {
  /** Format version before. */
  from: number;
  /** Format version now (the current one). */
  to: number;
  migrated: boolean;
}

export async function migratePoolDir(dir: string): Promise<MigrationResult> {
  const metaDir = poolMetadataDir(dir, 'pool');
  try {
    return await migrateLocked(dir, metaDir);
  } catch (err) {
    throw asPoolReadOnly(dir, err); // a read-only filesystem, another owner: as serve says it
  }
}

async function migrateLocked(dir: string, metaDir: string): Promise<MigrationResult> {
  const lock = PoolLock.acquire(dir);
  let reserve: MetadataReserve | null = null;
  let store: MetadataStore | null = null;
  try {
    store = MetadataStore.open(metaDir);
    const stored = store.get<PoolRecord>(DB.meta, META_POOL);
    if (stored?.format !== FORMAT_NAME) throw CORRUPT(`${dir} has no valid pool record`);
    if (!SUPPORTED_FORMAT_VERSIONS.includes(stored.formatVersion))
      throw UNSUPPORTED_VERSION(dir, stored.formatVersion, SUPPORTED_FORMAT_VERSIONS);
    // "Nothing to do" must not be said of a pool no agent could open: a record that does not decode is CORRUPT.
    store.checkRecordsDecode();
    // Metadata older than its data files is refused as serve refuses it, before a migration commits
    // (its commits would raise the generation past the data's stamp and hide it): fsck reports it.
    if (stored.formatVersion !== CURRENT_FORMAT_VERSION)
      refuseContradictingMarks(recordDataPaths(dir, stored), stored.uuid, store.generation);
    reserve = new MetadataReserve(dir, defaultReserveBytes(stored.capacityBlocks * stored.blockSize));
    const held = reserve;
    held.take();
    store.onNoSpace = () => held.release();
    const record = migrate(store, stored);
    return { from: stored.formatVersion, to: record.formatVersion, migrated: record !== stored };
  } finally {
    await store?.close();
    reserve?.close();
    lock.release();
  }
}
