/**
 * What a pool's data files say of themselves against its metadata: whose
 * they are (store/data-owner.ts) and the metadata commit they were last
 * stamped after (store/data-generation.ts). `serve` refuses a pool these
 * contradict (CORRUPT) and fsck reports the very same problems, so the two
 * never disagree (an outside tester found fsck clean on pools serve refused).
 *
 * Read the marks BEFORE the metadata they are compared with: a stamp follows
 * its commit, so marks read first are never newer than the metadata read after.
 * And compare them BEFORE anything commits: a migration's own commits raise
 * the metadata's generation, which would hide that it is older than its data,
 * and would rewrite it in a format the build it came from no longer opens.
 */
import * as path from 'node:path';
import { CORRUPT } from './errors';
import type { FsckCode } from './fsck';
import { dataGeneration } from './store/data-generation';
import { dataFilePaths, MAX_DATA_FILES } from './store/data-layout';
import { dataOwner, markedFiles } from './store/data-owner';
import { METADATA_RECOVERY } from './store/lmdb-corruption';
import type { PoolRecord } from './store/records';

export interface DataMark {
  /** The file carrying the marks (a data file, or a loop device's backing file). */
  path: string;
  /** The pool uuid it is marked with (null: unmarked, or no attribute support). */
  owner: string | null;
  /** The metadata commit it was last stamped after by this pool (null: none known). */
  generation: number | null;
}

export interface DataMarkProblem {
  code: Extract<FsckCode, 'DATA_FILE_OTHER_POOL' | 'METADATA_OLDER_THAN_DATA'>;
  message: string;
  details: Record<string, unknown>;
}

/** The marks on `paths`' files as pool `uuid` reads them; a missing data file has none (fsck reports it apart). */
export function readDataMarks(paths: string[], uuid: string): DataMark[] {
  return paths.flatMap((p) => {
    let files: string[];
    try {
      files = markedFiles([p]);
    } catch {
      return [];
    }
    return files.map((path) => ({ path, owner: dataOwner(path), generation: dataGeneration(path, uuid) }));
  });
}

/** What the marks contradict in metadata of pool `uuid` at commit `generation`. */
export function dataMarkProblems(marks: DataMark[], uuid: string, generation: number): DataMarkProblem[] {
  const problems: DataMarkProblem[] = [];
  for (const { path, owner, generation: stamp } of marks) {
    if (owner !== null && owner !== uuid)
      problems.push({
        code: 'DATA_FILE_OTHER_POOL',
        message: `data file ${path} belongs to pool ${owner}, not to this one (${uuid}): another pool was made on it (init --overwrite-data), and this pool's data there is gone, or <pool>/meta/ was put back from another pool's backup`,
        details: { path, owner, pool: uuid },
      });
    else if (stamp !== null && stamp > generation)
      problems.push({
        code: 'METADATA_OLDER_THAN_DATA',
        message: `the pool metadata is at commit ${generation}, older than data file ${path} (written up to commit ${stamp}): <pool>/meta/ was put back without the data files of the same moment, and the blocks it maps may hold other data since`,
        details: { path, metadataGeneration: generation, dataGeneration: stamp },
      });
  }
  return problems;
}

/** The data files a pool record names, in `dir` (CORRUPT when it names an impossible count). */
export function recordDataPaths(dir: string, record: PoolRecord): string[] {
  const files = record.dataFiles ?? 1;
  if (!Number.isInteger(files) || files < 1 || files > MAX_DATA_FILES)
    throw CORRUPT(`pool record names ${files} data files`, { dataFiles: files });
  return dataFilePaths(path.resolve(dir, record.dataPath), files);
}

/**
 * Throws CORRUPT, naming the fsck code, when the marks on `paths` contradict
 * metadata of pool `uuid` at commit `generation` (serve, migrate and grow
 * refuse what fsck reports). Returns the marks read.
 */
export function refuseContradictingMarks(paths: string[], uuid: string, generation: number): DataMark[] {
  const marks = readDataMarks(paths, uuid);
  const [problem] = dataMarkProblems(marks, uuid, generation);
  if (problem)
    throw CORRUPT(
      `${problem.message}; "snapsync-agent fsck --pool" reports it as ${problem.code}; ${METADATA_RECOVERY}`,
      { ...problem.details, problem: problem.code },
    );
  return marks;
}
