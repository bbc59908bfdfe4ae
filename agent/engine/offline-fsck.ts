/**
 * fsck without an agent (`snapsync-agent fsck --pool DIR`): opens the pool's
 * metadata read-only and runs the same checks as `Pool.fsck`, also on a pool
 * the agent refuses to open (a record of an unknown version, a record that
 * does not decode: those are the problems it reports).
 *
 * It takes no pool lock and writes nothing (no reserve, no commit, so it
 * works on a full disk): with an agent running on the pool, it checks the
 * last committed state, one LMDB read transaction, consistent by
 * construction; writes the agent has not committed yet are not in it.
 * A pool of a format version this build does not know is refused with
 * UNSUPPORTED_VERSION rather than checked against rules that may not apply.
 */
import * as path from 'node:path';
import { readDataMarks } from './data-marks';
import { UNSUPPORTED_VERSION } from './errors';
import { dataFileSizes, type FsckReport, fsck } from './fsck';
import { poolMetadataDir } from './pool-dir';
import { dataFilePaths, MAX_DATA_FILES } from './store/data-layout';
import { DB, FORMAT_NAME, META_POOL, SUPPORTED_FORMAT_VERSIONS } from './store/keys';
import { MetadataStore } from './store/metadata-store';
import type { PoolRecord } from './store/records';

export async function fsckPoolDir(
  dir: string,
  onProgress?: (done: number, total: number) => void,
): Promise<FsckReport> {
  const metaDir = poolMetadataDir(dir, 'pool');
  const store = MetadataStore.openReadOnly(metaDir);
  try {
    const stored = store.get<PoolRecord>(DB.meta, META_POOL);
    if (stored?.format === FORMAT_NAME && !SUPPORTED_FORMAT_VERSIONS.includes(stored.formatVersion))
      throw UNSUPPORTED_VERSION(dir, stored.formatVersion, SUPPORTED_FORMAT_VERSIONS);
    // A valid stored record is the one "opened with". Otherwise fsck compares the stored one (if any) with what a
    // pool record must say, reports it, and checks blocks against no capacity bound.
    const valid = stored?.format === FORMAT_NAME && Number.isInteger(stored.capacityBlocks);
    const record = valid
      ? stored
      : ({ format: FORMAT_NAME, capacityBlocks: Number.MAX_SAFE_INTEGER } as PoolRecord);
    // The data files of a valid record are checked to hold every mapped block (a missing one too).
    const files = stored?.dataFiles ?? 1;
    const dataFiles =
      valid &&
      typeof stored.dataPath === 'string' &&
      Number.isInteger(files) &&
      files >= 1 &&
      files <= MAX_DATA_FILES
        ? dataFileSizes(dataFilePaths(path.resolve(dir, stored.dataPath), files))
        : undefined;
    // Marks before the metadata fsck reads (a stamp follows its commit, data-marks.ts): with an agent
    // committing meanwhile, the snapshot read so far could be older than they are.
    const paths = dataFiles?.map((f) => f.path);
    const marks = paths && valid ? readDataMarks(paths, stored.uuid) : undefined;
    store.renewReadSnapshot();
    return await fsck({ store, record }, onProgress, dataFiles, marks);
  } finally {
    await store.close();
  }
}
