/**
 * `init --token-file FILE`: a new random token (mode 0600) unless FILE
 * exists, written before the pool is created so that a failure of either
 * can take back both (`undo` removes only what this call made: the file and
 * any directories it created for it, mode 0700).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { INVALID_ARGUMENT, IO_ERROR } from '../engine';

export interface NewTokenFile {
  created: boolean;
  undo(): void;
}

export function writeNewTokenFile(file: string): NewTokenFile {
  const existing = statIfThere(file);
  if (existing !== null) {
    if (!existing.isFile())
      throw INVALID_ARGUMENT(`token file ${file} exists and is not a regular file`, {
        argument: 'tokenFile',
        reason: 'not-a-file',
        path: file,
      });
    return { created: false, undo: () => {} };
  }
  const parent = path.dirname(path.resolve(file));
  let firstMadeDir: string | undefined;
  try {
    firstMadeDir = fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw IO_ERROR(`create directory ${parent} for the token file`, err, { path: parent });
  }
  const undo = () => {
    fs.rmSync(file, { force: true });
    if (firstMadeDir !== undefined) fs.rmSync(firstMadeDir, { recursive: true, force: true });
  };
  try {
    fs.writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // 'wx' refused or failed before the file was ours: only the directories are ours to remove.
    if (firstMadeDir !== undefined) fs.rmSync(firstMadeDir, { recursive: true, force: true });
    throw IO_ERROR('write token file', err, { path: file });
  }
  return { created: true, undo };
}

function statIfThere(file: string): fs.Stats | null {
  try {
    return fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw IO_ERROR('stat token file', err, { path: file });
  }
}
