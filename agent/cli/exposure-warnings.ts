/**
 * Warnings `serve` logs at start for setups that work but expose more than
 * they should: each names what is exposed and has a stable `code`.
 */

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

/** A Unix socket others may write to: every local user can read and write every vdisk. */
export function warnNbdSocketMode(logger: Logger, mode: number | undefined, url: string): void {
  if (mode === undefined || (mode & 0o002) === 0) return;
  logger.warn(
    `the NBD socket is writable by every local user (mode 0${mode.toString(8).padStart(3, '0')}): each can read and write every vdisk (use 0660 and --nbd-socket-group)`,
    { code: 'NBD_SOCKET_OPEN_TO_ALL', nbd: url },
  );
}
