/**
 * The whole on-disk key layout of the metadata store, in one place.
 *
 * Every record carries `v` (its record version); a reader refuses versions it
 * does not know instead of guessing. Map entries and presence chunks are the
 * only high-volume records and are kept as packed binary groups / bitmaps.
 *
 * Format versions (the pool record's `formatVersion`, checked at open):
 * - 1: `map` holds one entry per mapped block (ordered-binary `[table, block]`
 *   → number). Read by the migration and by fsck only; opening migrates it.
 * - 2: `map-groups` holds one record per 1024 logical blocks of a table
 *   (block-map.ts); `map` is empty. Incompatible: a format-1 build refuses it.
 * - 3: as 2, and the pool record's `dataFiles` may stripe the data over
 *   several files (data-layout.ts). Incompatible: a format-2 build would
 *   read a striped pool as one file, so it refuses format 3.
 * - 4: as 3, and `map-masks` may say an entry owns only some sub-blocks of
 *   its block (sub-block.ts, mask-record.ts), the rest read through to the
 *   chain; a `presence` record may be a list of offsets (presence-record.ts).
 *   Incompatible: a format-3 build would read those sub-blocks from the
 *   entry's block, which holds stale bytes there.
 */

export const FORMAT_NAME = 'snapsync-pool';
/** Pool format versions this build can open (older ones are migrated at open). */
export const SUPPORTED_FORMAT_VERSIONS = [1, 2, 3, 4];
export const CURRENT_FORMAT_VERSION = 4;

export const DB = {
  /** 'pool' → PoolRecord, 'hwm' → number (next never-used physical block), 'seq' → SequenceRecord, 'generation' → number */
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
  /** Format 1 only: [table id, logical block] → physical block (0 = explicit zeros, a "tombstone") */
  map: 'map',
  /** Format 2: table u32 BE | group u32 BE (8 bytes) → packed group record (block-map.ts) */
  mapGroups: 'map-groups',
  /** Format 4: the same key as `map-groups` → the sub-block masks of the group's partial entries (mask-record.ts) */
  mapMasks: 'map-masks',
  /** [table id, chunk index] → the logical blocks the table maps in that chunk (presence-record.ts) */
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
/** Number of metadata commits so far (absent: none since this key was added); data files are stamped with it (data-generation.ts). */
export const META_GENERATION = 'generation';

export type PresenceKey = [table: number, chunk: number];
export type SnapshotNameKey = [container: number, name: string];

/** Physical block value meaning "this table says: zeros here" (hides the parent). */
export const ZERO_BLOCK = 0;
