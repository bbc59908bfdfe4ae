/**
 * The whole on-disk key layout of the metadata store, in one place.
 *
 * Every record carries `v` (its record version); a reader refuses versions it
 * does not know instead of guessing. Map entries and presence chunks are the
 * only high-volume records and are kept as bare numbers / bitmaps.
 */

export const FORMAT_NAME = 'snapsync-pool';
/** Pool format versions this build can open. */
export const SUPPORTED_FORMAT_VERSIONS = [1];
export const CURRENT_FORMAT_VERSION = 1;

export const DB = {
  /** 'pool' → PoolRecord, 'hwm' → number (next never-used physical block), 'seq' → SequenceRecord */
  meta: 'meta',
  /** container id → ContainerRecord */
  containers: 'containers',
  /** container name → container id */
  names: 'names',
  /** snapshot id → SnapshotRecord */
  snapshots: 'snapshots',
  /** [container id, snapshot name] → snapshot id (names are unique per container) */
  snapshotNames: 'snapshot-names',
  /** table id → TableRecord */
  tables: 'tables',
  /** [table id, logical block] → physical block (0 = explicit zeros, a "tombstone") */
  map: 'map',
  /** [table id, chunk index] → bitmap of the logical blocks the table maps in that chunk */
  presence: 'presence',
  /** first free physical block → run length */
  free: 'free',
  /** idempotency key → IdempotencyRecord */
  idempotency: 'idempotency',
} as const;

export type DbName = (typeof DB)[keyof typeof DB];

export const META_POOL = 'pool';
export const META_HWM = 'hwm';
export const META_SEQ = 'seq';

export type MapKey = [table: number, logicalBlock: number];
export type PresenceKey = [table: number, chunk: number];
export type SnapshotNameKey = [container: number, name: string];

export const mapKey = (table: number, block: number): MapKey => [table, block];
export const presenceKey = (table: number, chunk: number): PresenceKey => [table, chunk];

/** Physical block value meaning "this table says: zeros here" (hides the parent). */
export const ZERO_BLOCK = 0;
