/**
 * Import/export paths: only inside directories the operator allowed. The
 * check uses real paths (symlinks resolved) of the file or, for a file yet to
 * be created, of its parent directory, so `..` and links cannot escape.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WireError } from './wire-error';

export class AllowedDirs {
  private readonly roots: string[];

  constructor(dirs: string[]) {
    this.roots = dirs.map((d) => fs.realpathSync(d));
  }

  /** The real path of `requested` if it lies inside an allowed directory, else PATH_NOT_ALLOWED. */
  resolve(requested: string, mustExist: boolean): string {
    if (!path.isAbsolute(requested)) {
      throw new WireError('PATH_NOT_ALLOWED', `"${requested}" must be an absolute path`, { path: requested });
    }
    let real: string;
    try {
      real = mustExist
        ? fs.realpathSync(requested)
        : path.join(fs.realpathSync(path.dirname(requested)), path.basename(requested));
    } catch {
      throw new WireError('PATH_NOT_ALLOWED', `"${requested}" does not exist or cannot be resolved`, {
        path: requested,
      });
    }
    if (!this.roots.some((root) => real === root || real.startsWith(root + path.sep))) {
      throw new WireError('PATH_NOT_ALLOWED', `"${requested}" is outside the directories this agent allows`, {
        path: requested,
        allowed: this.roots,
      });
    }
    return real;
  }
}
