/**
 * What a pool's data files say of themselves against its metadata: whose
 * they are (store/data-owner.ts) and the metadata commit they were last
 * stamped after (store/data-generation.ts). `serve` refuses a pool these
 * contradict (CORRUPT) and fsck reports the very same problems, so the two
 * never disagree (an outside tester found fsck clean on pools serve refused).
 *
 * Read the marks BEFORE the metadata they are compared with: a stamp follows
 * its commit, so marks read first are never newer than the metadata read after.
 */
import type { FsckCode } from './fsck';
import { dataGeneration } from './store/data-generation';
import { dataOwner, markedFiles } from './store/data-owner';

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
