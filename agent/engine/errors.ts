/**
 * One error class for the whole engine, with a stable `code` per failure.
 * Callers (agent, CLI, provider) switch on `code`, never on the message.
 */
export const ERROR_CODES = [
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'TYPE_MISMATCH',
  'OUT_OF_RANGE',
  'OUT_OF_SPACE',
  'HAS_DEPENDENTS',
  'POOL_LOCKED',
  'UNSUPPORTED_VERSION',
  'INVALID_ARGUMENT',
  'IO_ERROR',
  'CORRUPT',
  'CLOSED',
  'FROZEN_TABLE',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export type ErrorDetails = Record<string, unknown>;

export class SnapsyncError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'SnapsyncError';
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isSnapsyncError(err: unknown, code?: ErrorCode): err is SnapsyncError {
  return err instanceof SnapsyncError && (code === undefined || err.code === code);
}

// Named factories: one per failure, so messages stay consistent and greppable.

export const NOT_FOUND = (kind: string, ref: string | number) =>
  new SnapsyncError('NOT_FOUND', `${kind} "${ref}" does not exist`, { kind, ref });

export const ALREADY_EXISTS = (kind: string, name: string) =>
  new SnapsyncError('ALREADY_EXISTS', `${kind} "${name}" already exists`, { kind, name });

export const TYPE_MISMATCH = (message: string, details: ErrorDetails) =>
  new SnapsyncError('TYPE_MISMATCH', message, details);

export const OUT_OF_RANGE = (container: string, offset: number, length: number, size: number) =>
  new SnapsyncError(
    'OUT_OF_RANGE',
    `I/O at offset ${offset} length ${length} is outside "${container}" (size ${size})`,
    { container, offset, length, size },
  );

export const OUT_OF_SPACE = (needed: number, free: number) =>
  new SnapsyncError('OUT_OF_SPACE', `pool is full: ${needed} block(s) needed, ${free} free`, {
    needed,
    free,
  });

export const HAS_DEPENDENTS = (kind: string, name: string, dependents: string[]) =>
  new SnapsyncError('HAS_DEPENDENTS', `${kind} "${name}" still has dependents: ${dependents.join(', ')}`, {
    kind,
    name,
    dependents,
  });

export const POOL_LOCKED = (path: string, holder: string) =>
  new SnapsyncError('POOL_LOCKED', `pool at ${path} is already open (${holder})`, { path, holder });

export const UNSUPPORTED_VERSION = (path: string, found: unknown, supported: number[]) =>
  new SnapsyncError(
    'UNSUPPORTED_VERSION',
    `pool at ${path} has format version ${String(found)}; this build supports ${supported.join(', ')}`,
    { path, found, supported },
  );

export const INVALID_ARGUMENT = (message: string, details: ErrorDetails = {}) =>
  new SnapsyncError('INVALID_ARGUMENT', message, details);

export const IO_ERROR = (op: string, cause: unknown, details: ErrorDetails = {}) =>
  new SnapsyncError(
    'IO_ERROR',
    `${op} failed: ${(cause as NodeJS.ErrnoException)?.code ?? String(cause)}`,
    { op, errno: (cause as NodeJS.ErrnoException)?.code, ...details },
    cause,
  );

export const CORRUPT = (message: string, details: ErrorDetails = {}) =>
  new SnapsyncError('CORRUPT', message, details);

export const CLOSED = () => new SnapsyncError('CLOSED', 'pool is closed');

/** A write, zero or trim aimed at a frozen (snapshot) table: refused by construction, never applied. */
export const FROZEN_TABLE = (table: number) =>
  new SnapsyncError('FROZEN_TABLE', `mapping table ${table} is frozen (a snapshot's) and cannot be written`, {
    table,
  });
