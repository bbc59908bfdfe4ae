/**
 * Errors of the NBD layer, with stable codes, and the one mapping from any
 * failure (ours or the engine's) to the errno a client sees on the wire.
 */
import { isSnapsyncError } from '../engine/errors';
import { NBD_ERR, type NbdErrno } from './constants';

export const NBD_ERROR_CODES = [
  /** The peer broke a MUST of the protocol (bad magic, impossible length): the connection is dropped. */
  'PROTOCOL_VIOLATION',
  /** The peer closed the connection while we were waiting for bytes. */
  'CONNECTION_CLOSED',
  /** No export by that name. */
  'EXPORT_NOT_FOUND',
  /** A write, trim or zero on a read-only export (a snapshot, or a vdisk another client is writing). */
  'READ_ONLY',
  /** Offset/length outside the export. */
  'OUT_OF_BOUNDS',
  /** Unknown command, flag not valid for the command, or a length over the limits. */
  'INVALID_REQUEST',
  /** The server is closing. */
  'SHUTDOWN',
  /** TLS was asked for but could not be set up. */
  'TLS_FAILED',
  /** A listen address that does not parse (`--nbd host:port`). */
  'INVALID_ADDRESS',
  /** NBD on TCP without client authentication (TLS with a client CA or PSK), and no loopback opt-out. */
  'AUTH_REQUIRED',
  /** A PSK key file that does not parse (`identity:hexkey` lines). */
  'INVALID_PSK_FILE',
  /** An NBD access file that does not parse (`cn:NAME|psk:NAME pattern…` lines). */
  'INVALID_ACCESS_FILE',
  /** The export is fenced: a forced operation disconnected its clients; `unfence` lifts it (fences.ts). */
  'EXPORT_FENCED',
] as const;

export type NbdErrorCode = (typeof NBD_ERROR_CODES)[number];

export class NbdError extends Error {
  constructor(
    readonly code: NbdErrorCode,
    message: string,
    /** Errno to report for this failure, when it answers a request. */
    readonly errno: NbdErrno = NBD_ERR.EINVAL,
  ) {
    super(message);
    this.name = 'NbdError';
  }
}

export const isNbdError = (err: unknown, code?: NbdErrorCode): err is NbdError =>
  err instanceof NbdError && (code === undefined || err.code === code);

/** The wire errno for a failed request. */
export function toNbdErrno(err: unknown): NbdErrno {
  if (err instanceof NbdError) return err.errno;
  if (isSnapsyncError(err)) {
    switch (err.code) {
      case 'OUT_OF_RANGE':
      case 'INVALID_ARGUMENT':
      case 'TYPE_MISMATCH':
        return NBD_ERR.EINVAL;
      case 'OUT_OF_SPACE':
        return NBD_ERR.ENOSPC;
      case 'CLOSED':
        return NBD_ERR.ESHUTDOWN;
      default:
        // IO_ERROR, CORRUPT, NOT_FOUND (deleted under us), …
        return NBD_ERR.EIO;
    }
  }
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOSPC' || errno === 'EDQUOT' || errno === 'EFBIG') return NBD_ERR.ENOSPC;
  if (errno === 'EPERM' || errno === 'EACCES' || errno === 'EROFS') return NBD_ERR.EPERM;
  return NBD_ERR.EIO;
}

/** A short, single-line message safe to send to a client (at most 4096 bytes on the wire). */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 512 ? `${text.slice(0, 509)}...` : text;
}
