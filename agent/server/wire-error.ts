/** Errors as they go on the wire: a stable code, a message, details. */

import type { WireErrorCode } from '../../schema/error-codes';
import { isSnapsyncError, lmdbCorruption } from '../engine';

export class WireError extends Error {
  constructor(
    readonly code: WireErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'WireError';
  }
}

/** `metadataFile`: the pool's data.mdb, named in a CORRUPT made of a raw LMDB error. */
export function toWire(
  err: unknown,
  metadataFile?: string,
): { code: string; message: string; details: Record<string, unknown> } {
  const corrupt = lmdbCorruption(err, metadataFile);
  if (corrupt) return corrupt.toJSON();
  if (err instanceof WireError || isSnapsyncError(err)) {
    return { code: err.code, message: err.message, details: err.details };
  }
  return { code: 'INTERNAL', message: 'internal error (see the agent log)', details: {} };
}
