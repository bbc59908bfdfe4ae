/**
 * One error class for the whole engine, with a stable `code` per failure.
 * Callers (agent, CLI, provider) switch on `code`, never on the message.
 */
import * as os from 'node:os';

export const ERROR_CODES = [
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'TYPE_MISMATCH',
  'OUT_OF_RANGE',
  'OUT_OF_SPACE',
  'HAS_DEPENDENTS',
  'IS_VM_MEMBER',
  'POOL_LOCKED',
  'POOL_READ_ONLY',
  'UNSUPPORTED_VERSION',
  'INVALID_ARGUMENT',
  'IO_ERROR',
  'CORRUPT',
  'CLOSED',
  'FROZEN_TABLE',
  'IDENTITY_REFERENCE_UNMAPPED',
  'IDENTITY_SOURCE_REFERENCE',
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
  new SnapsyncError(
    'OUT_OF_SPACE',
    `pool is full: ${needed} block(s) needed, ${free} free: delete snapshots or containers (usage shows what each frees), or raise the pool's capacity (snapsync-agent grow)`,
    {
      needed,
      free,
    },
  );

/** The filesystem under the pool (not the pool's own capacity) has no room: same code, other cause. */
export const HOST_OUT_OF_SPACE = (op: string, cause?: unknown) =>
  new SnapsyncError(
    'OUT_OF_SPACE',
    `the host filesystem under the pool is full (${op}): free space there, or delete containers or snapshots`,
    { host: true, op },
    cause,
  );

export const HAS_DEPENDENTS = (kind: string, name: string, dependents: string[]) =>
  new SnapsyncError('HAS_DEPENDENTS', `${kind} "${name}" still has dependents: ${dependents.join(', ')}`, {
    kind,
    name,
    dependents,
  });

/** A container that is a VM's member is deleted only with `detach` (the VM would silently lose a disk). */
export const IS_VM_MEMBER = (name: string, vm: string, role: string) =>
  new SnapsyncError(
    'IS_VM_MEMBER',
    `"${name}" is member ${role} of VM "${vm}": pass detach (CLI --detach) to take it out of the VM and delete it, or delete the VM`,
    { container: name, vm, role },
  );

export const POOL_LOCKED = (path: string, holder: string) =>
  new SnapsyncError('POOL_LOCKED', `pool at ${path} is already open (${holder})`, { path, holder });

/**
 * The pool's own files cannot be opened for writing (pool-read-only.ts): its
 * filesystem is mounted read-only (EROFS), or the agent's user may not write
 * them (EACCES, or EPERM for an immutable file). The message says the fix.
 */
export const POOL_READ_ONLY = (dir: string, file: string, errno: string, cause?: unknown) =>
  new SnapsyncError(
    'POOL_READ_ONLY',
    errno === 'EROFS'
      ? `pool at ${dir} is on a read-only filesystem (${file}: EROFS): the agent writes its lock, metadata and data files there; remount that filesystem read-write (mount -o remount,rw) or copy the pool to a writable one (fsck --pool checks it where it is)`
      : `pool at ${dir} is not writable by ${agentUser()} (${file}: ${errno}): give that user the pool directory and everything in it (chown -R), or make them writable${errno === 'EPERM' ? ' (an immutable file: chattr -i)' : ''}`,
    { path: dir, file, errno, ...(errno === 'EROFS' ? {} : { uid: process.getuid?.() }) },
    cause,
  );

/** A data file or device another process holds (store/data-claim.ts): another pool's agent, a mount, LVM or RAID. */
export const DATA_IN_USE = (path: string) =>
  new SnapsyncError(
    'POOL_LOCKED',
    `data file ${path} is in use: another pool's agent has it open (or, for a device, it is mounted or part of LVM or RAID)`,
    { path, dataInUse: true },
  );

export const UNSUPPORTED_VERSION = (path: string, found: unknown, supported: number[]) =>
  new SnapsyncError(
    'UNSUPPORTED_VERSION',
    `pool at ${path} has format version ${String(found)}; this build supports ${supported.join(', ')}`,
    { path, found, supported },
  );

export const INVALID_ARGUMENT = (message: string, details: ErrorDetails = {}) =>
  new SnapsyncError('INVALID_ARGUMENT', message, details);

/**
 * A failed system call. LMDB gives a bare errno number: it is named (13 is
 * EACCES). A permission refusal says which user was refused, since the fix is
 * the pool's owner or mode, or the service's user.
 */
export const IO_ERROR = (op: string, cause: unknown, details: ErrorDetails = {}) => {
  const raw = (cause as NodeJS.ErrnoException)?.code as unknown;
  const errno = typeof raw === 'number' ? errnoName(raw) : (raw as string | undefined);
  const denied = errno === 'EACCES' || errno === 'EPERM';
  return new SnapsyncError(
    'IO_ERROR',
    `${op} failed: ${errno ?? String(cause)}${denied ? ` (permission denied to ${agentUser()})` : ''}`,
    { op, errno, ...(denied ? { uid: process.getuid?.() } : {}), ...details },
    cause,
  );
};

/** The errno's name (EACCES for 13), or the number itself when the platform has no name for it. */
function errnoName(errno: number): string {
  const name = Object.entries(os.constants.errno).find(([, value]) => value === errno)?.[0];
  return name ?? String(errno);
}

/** "uid 65534 (nobody), the user the agent runs as". */
function agentUser(): string {
  const uid = process.getuid?.();
  if (uid === undefined) return 'the user the agent runs as';
  let name = '';
  try {
    name = ` (${os.userInfo().username})`;
  } catch {
    // A uid with no passwd entry (a container's arbitrary uid) has no name.
  }
  return `uid ${uid}${name}, the user the agent runs as`;
}

export const CORRUPT = (message: string, details: ErrorDetails = {}) =>
  new SnapsyncError('CORRUPT', message, details);

export const CLOSED = () => new SnapsyncError('CLOSED', 'pool is closed');

/** A write, zero or trim aimed at a frozen (snapshot) table: refused by construction, never applied. */
export const FROZEN_TABLE = (table: number) =>
  new SnapsyncError('FROZEN_TABLE', `mapping table ${table} is frozen (a snapshot's) and cannot be written`, {
    table,
  });
/** A reference the target never had, in a synced config, with no mapping to the target's own: the sync is refused. */
/** What runs the identity hooks: the messages say what was refused and how else to get it. */
export type IdentityOperation = 'sync' | 'clone';

export const IDENTITY_REFERENCE_UNMAPPED = (
  target: string,
  references: Array<{ path: string; sourceValue: string; unmapped: string[] }>,
  operation: IdentityOperation = 'sync',
) =>
  new SnapsyncError(
    'IDENTITY_REFERENCE_UNMAPPED',
    `${operation} of "${target}" refused: the ${operation === 'clone' ? 'cloned' : 'synced'} config would point at the source's ${references
      .map((r) => `${r.path} = ${r.unmapped.join(', ')}`)
      .join(
        '; ',
      )}; the target has no such reference and no mapping could be derived (give one with referenceMap / --map SRC=DST${operation === 'clone' ? ', or keepIdentity / --keep-identity for an exact copy' : ''})`,
    { target, references },
  );

/**
 * A synced config that cannot be read (not UTF-8, too large, of no known format): its references
 * (disks, networks) cannot be checked or made the target's, so the sync is refused (all or nothing).
 */
export const IDENTITY_CONFIG_UNREADABLE = (
  target: string,
  unreadable: Array<{ member: string; reason: string }>,
  operation: IdentityOperation = 'sync',
) =>
  new SnapsyncError(
    'IDENTITY_REFERENCE_UNMAPPED',
    `${operation} of "${target}" refused: the ${operation === 'clone' ? 'cloned' : 'synced'} ${unreadable
      .map((u) => `${u.member} cannot be read (${u.reason})`)
      .join(
        '; ',
      )}, so the disks and networks it names cannot be made the target's; fix the source's config, or ${operation === 'clone' ? 'clone an exact copy (keepIdentity / --keep-identity)' : 'sync the other members only (members / --member)'}`,
    { target, unreadable },
  );

/** A name or UUID of the source's containers, or a replaced identity value of its, left in a synced config or file member: refused (all or nothing). */
export const IDENTITY_SOURCE_REFERENCE = (
  target: string,
  found: Array<{ path: string; name: string; line: number; text: string }>,
  operation: IdentityOperation = 'sync',
) =>
  new SnapsyncError(
    'IDENTITY_SOURCE_REFERENCE',
    `${operation} of "${target}" refused: a ${operation === 'clone' ? 'cloned' : 'synced'} config or file still names the source: ${found
      .map((f) => `${f.path} line ${f.line}: "${f.name}"`)
      .join(
        '; ',
      )} (map each to the target's own with referenceMap / --map SRC=DST, or allow one on purpose with allowSourceReferences / --allow-source-reference NAME)`,
    { target, found },
  );
