/**
 * Warnings `serve` logs at start for setups that work but expose more than
 * they should: each names what is exposed and has a stable `code`.
 */

import * as fs from 'node:fs';
import type { Logger } from '../server/logger';
import { isLoopback } from '../server/loopback';

/** ws:// off loopback: every client sends the bearer token in clear text. */
export function warnPlaintextListener(logger: Logger, host: string, url: string, tls: boolean): void {
  if (tls || isLoopback(host)) return;
  logger.warn(
    `${url} is not loopback and has no TLS: the bearer token and all data travel in clear text (give --tls-cert and --tls-key)`,
    { code: 'LISTEN_WITHOUT_TLS', listen: url },
  );
}

/**
 * A pool directory or data file other users may open: every VM's disk blocks are readable through
 * it (a pool made before init made them private, or a --data file made by hand).
 */
export function warnPoolNotPrivate(logger: Logger, directory: string, dataPaths: string[]): void {
  for (const file of [directory, ...dataPaths]) {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      continue;
    }
    // A block device node's own mode is the operator's (udev) business; a file or directory is ours.
    if (st.isBlockDevice() || (st.mode & 0o077) === 0) continue;
    const mode = `0${(st.mode & 0o777).toString(8).padStart(3, '0')}`;
    logger.warn(
      `${file} can be opened by other users than its owner (mode ${mode}): every container's data is readable through it (chmod ${st.isDirectory() ? '700' : '600'} it)`,
      { code: 'POOL_NOT_PRIVATE', path: file, mode },
    );
  }
}

/** A Unix socket others may write to: every local user can read and write every vdisk. */
export function warnNbdSocketMode(logger: Logger, mode: number | undefined, url: string): void {
  if (mode === undefined || (mode & 0o002) === 0) return;
  logger.warn(
    `the NBD socket is writable by every local user (mode 0${mode.toString(8).padStart(3, '0')}): each can read and write every vdisk (use 0660 and --nbd-socket-group)`,
    { code: 'NBD_SOCKET_OPEN_TO_ALL', nbd: url },
  );
}
