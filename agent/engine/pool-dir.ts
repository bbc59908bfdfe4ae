/**
 * Whether a directory holds a pool, asked one way by `serve` and by every
 * offline tool (`fsck`, `migrate`, `grow --pool`): by its metadata file,
 * `meta/data.mdb`. Opening LMDB on a directory without that file would
 * create an empty one, so a tool that then refuses would have changed the
 * directory (and the next tool's answer); the file is looked for first. A
 * directory the agent's user may not read is a permission problem, not a
 * missing pool.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { INVALID_ARGUMENT, IO_ERROR } from './errors';

/** The pool's metadata directory (`<dir>/meta`); INVALID_ARGUMENT if there is no pool, IO_ERROR if it cannot be reached. */
export function poolMetadataDir(dir: string, argument: string): string {
  const file = path.join(dir, 'meta', 'data.mdb');
  try {
    if (fs.statSync(file).isFile()) return path.dirname(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR')
      throw IO_ERROR(`reach the pool's metadata ${file}`, err, { path: file });
  }
  throw INVALID_ARGUMENT(`${dir} holds no pool (no metadata file ${file})`, { argument });
}
