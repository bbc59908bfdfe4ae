/**
 * Every error code a client can receive, with what it means. The engine's
 * codes come first; the rest are the protocol's. docs/protocol.md lists them.
 */
export const ERROR_CODES = {
  NOT_FOUND: 'the container or snapshot does not exist',
  ALREADY_EXISTS: 'a container or snapshot of that name exists',
  TYPE_MISMATCH: 'the operation does not fit the container type (e.g. syncing a vdisk to a file snapshot)',
  OUT_OF_RANGE: 'I/O outside the container',
  OUT_OF_SPACE: 'the pool (or its device) is full',
  HAS_DEPENDENTS: 'refused while snapshots exist (pass recursive)',
  IS_VM_MEMBER:
    'the container is a member of a VM (details.vm, details.role): pass detach to take it out and delete it',
  POOL_LOCKED: 'another process has the pool open',
  POOL_READ_ONLY:
    "the pool's files cannot be opened for writing: its filesystem is read-only (EROFS) or the agent's user may not write them (EACCES, EPERM); details.file, details.errno",
  UNSUPPORTED_VERSION: 'the pool format is newer than this agent',
  INVALID_ARGUMENT: 'a parameter the schema allows but the operation refuses',
  IO_ERROR: 'the device failed',
  CORRUPT: 'metadata is inconsistent (run fsck)',
  CLOSED: 'the pool is closing',
  FROZEN_TABLE:
    "a write, zero or trim aimed at a snapshot's frozen table (refused by construction; a bug if seen)",
  IDENTITY_REFERENCE_UNMAPPED:
    "a sync would leave a synced config pointing at the source's disks, files or networks, and no mapping to the target's own could be derived (details.references; nothing changed; pass referenceMap), or a synced config cannot be read at all (a vdisk under role config, not UTF-8, malformed: details.unreadable)",
  IDENTITY_SOURCE_REFERENCE:
    "after a sync a synced config (or any other synced file member, or a VM's synced vdisk of at most 4 MiB) still names a container of the source or its UUID, or holds a UUID, GUID or MAC of the source that the restore replaced (details.found; nothing changed; pass allowSourceReferences)",
  INVALID_REQUEST: 'the message does not match the schema (details.problems names each JSON path)',
  UNSUPPORTED_PROTOCOL: 'the client speaks no protocol version this agent speaks',
  HELLO_REQUIRED: 'the first request on a connection must be hello',
  UNKNOWN_OP: 'no such operation',
  DUPLICATE_ID: 'a request with this id is still in flight',
  TOO_MANY_REQUESTS: 'too many requests in flight on this connection',
  IDEMPOTENCY_CONFLICT: 'the idempotency key was used with other parameters',
  PATH_NOT_ALLOWED: 'import/export path outside the directories the operator allowed',
  NOT_A_REGULAR_FILE:
    'import/export path names a directory, FIFO, socket, device or symlink (only regular files, and block devices when the operator allowed them)',
  DATA_MISSING: 'a write request whose binary frame did not follow',
  SHUTTING_DOWN:
    'the agent is stopping: it takes no new requests, an import under way is given up and undone, and an export to a file is discarded',
  INTERNAL: 'a bug in the agent (logged)',
  IN_USE:
    'a client is attached (NBD) to what the operation would change (details.sessions names each session); pass force to disconnect it first',
} as const;

export type WireErrorCode = keyof typeof ERROR_CODES;
