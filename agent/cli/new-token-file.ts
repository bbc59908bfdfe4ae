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
import { MIN_TOKEN_LENGTH } from '../server/auth';

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
    // serve would refuse it: say so now, before a pool is made around it.
    if (fs.readFileSync(file, 'utf8').trim().length < MIN_TOKEN_LENGTH)
      throw INVALID_ARGUMENT(
        `token file ${file} exists and holds fewer than ${MIN_TOKEN_LENGTH} characters, which serve refuses: remove it (init writes a new one) or write a longer one`,
        { argument: 'tokenFile', reason: 'token-too-short', path: file },
      );
    return { created: false, undo: () => {} };
  }
  const parent = path.dirname(path.resolve(file));
  let firstMadeDir: string | undefined;
  try {
    firstMadeDir = makeDirectories(parent, 0o700);
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

/**
 * `mkdir -p`, returning the first directory it made. Not fs.mkdirSync's `recursive`: under /proc
 * (a missing pid) it never returns, spinning on ENOENT.
 */
function makeDirectories(dir: string, mode: number): string | undefined {
  const missing: string[] = [];
  for (let at = dir; statIfThere(at) === null; at = path.dirname(at)) {
    missing.unshift(at);
    if (path.dirname(at) === at) break;
  }
  for (const d of missing) fs.mkdirSync(d, { mode });
  return missing[0];
}

function statIfThere(file: string): fs.Stats | null {
  try {
    return fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw IO_ERROR('stat token file', err, { path: file });
  }
}
