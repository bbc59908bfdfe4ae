/**
 * fsck: checks every invariant of the committed metadata, reading one
 * consistent store snapshot (not the in-memory state), and names each problem
 * with a stable code (FSCK_CODES, each documented there; docs/architecture.md
 * lists them too). Problems are reported, never repaired here.
 * Cost: one pass over every record and map entry, a bitmap of hwm bits.
 */
import type { EngineCore } from './core';
import { type DataMark, dataMarkProblems } from './data-marks';
import { CHUNK_BLOCKS, CHUNK_SHIFT, popcount } from './presence';
import { decodePresence } from './presence-record';
import { deviceSize } from './store/block-device';
import { BlockMap } from './store/block-map';
import { DataLayout, MAX_DATA_FILES } from './store/data-layout';
import { GROUP_BLOCKS } from './store/group-record';
import { CURRENT_FORMAT_VERSION, DB, META_GENERATION, META_HWM, META_POOL, ZERO_BLOCK } from './store/keys';
import type { ContainerRecord, PoolRecord, SnapshotRecord, TableRecord } from './store/records';
import { maskEnd, validMask } from './sub-block';

export const FSCK_CODES = [
  /** The stored pool record is missing or differs from the one the pool was opened with. */
  'POOL_RECORD_INVALID',
  /** A container, snapshot or table record that is not a version-1 record of its key's id, or a map group record that does not decode. */
  'RECORD_INVALID',
  /** The container name index and the container records disagree. */
  'NAME_INDEX_MISMATCH',
  /** A vdisk/file without a valid unfrozen table of its own, or a VM with a table. */
  'CONTAINER_TABLE_INVALID',
  /** A VM and its member (or a VM snapshot and its member snapshot) do not point at each other. */
  'MEMBER_INVALID',
  /** A snapshot without a valid frozen table of its own. */
  'SNAPSHOT_TABLE_INVALID',
  /** A visible snapshot of a container that does not exist. */
  'SNAPSHOT_CONTAINER_MISSING',
  /** The snapshot name index and the visible snapshots disagree. */
  'SNAPSHOT_NAME_INDEX_MISMATCH',
  /** A hidden snapshot nothing reads through, and not held for an NBD reader (heldByReader): it should have been freed. */
  'HIDDEN_SNAPSHOT_UNREFERENCED',
  /** A table whose owner does not use it (or uses it with the wrong frozen state). */
  'TABLE_OWNER_INVALID',
  /** A parent pointer to a table that does not exist. */
  'PARENT_MISSING',
  /** A parent that is not frozen (it could still change under its children). */
  'PARENT_NOT_FROZEN',
  /** Parent pointers that loop (reported once per loop). */
  'CHAIN_CYCLE',
  /** A discarded table that other tables still read through. */
  'GARBAGE_HAS_DEPENDENTS',
  /** A discarded table that still points at a parent (discarding clears it). */
  'GARBAGE_HAS_PARENT',
  /** A map entry of a table that does not exist. */
  'MAP_TABLE_MISSING',
  /** A map entry outside the pool's used blocks. */
  'BLOCK_OUT_OF_RANGE',
  /** A physical block mapped by two entries. */
  'BLOCK_DOUBLE_OWNED',
  /** Physical blocks neither mapped nor free. */
  'BLOCK_LEAKED',
  /** A free extent outside the used blocks, or overlapping another. */
  'FREE_EXTENT_INVALID',
  /** A block both free and mapped. */
  'FREE_OVERLAPS_OWNED',
  /** Presence bitmaps that disagree with the map entries. */
  'PRESENCE_MISMATCH',
  /** Map records in the layout of another format version than the pool record's (a migration half applied). */
  'FORMAT_MIXED',
  /**
   * A sub-block mask (format 4) an entry cannot have: on explicit zeros or no entry at all, every
   * sub-block or none, or sub-blocks past the block's; the block would read wrong bytes.
   */
  'MASK_INVALID',
  /** An id sequence below an id it already handed out (the next one would collide). */
  'SEQUENCE_BEHIND',
  /** A frozen (snapshot) table whose map entries differ from what it held when it froze: it was written. */
  'FROZEN_TABLE_WRITTEN',
  /**
   * A container marked as being imported into (importUndo: a crash leaves that, the next open restores it)
   * whose undo point is not a hidden data snapshot of its own that its current table reads through directly.
   */
  'IMPORT_UNDO_INVALID',
  /**
   * A data file that ends before blocks mapped in it start (truncated, replaced or missing): those
   * blocks read as zeros. A mapped block's bytes were written, and made durable, before its entry committed.
   */
  'DATA_FILE_SHORT',
  /** A data file marked as another pool's (init --overwrite-data took it, or meta/ is another pool's): serve refuses the pool. */
  'DATA_FILE_OTHER_POOL',
  /**
   * Metadata at an older commit than a data file was stamped after (data-marks.ts): meta/ was put back without
   * the data files of the same moment, and may map blocks that hold other data since. serve refuses the pool.
   */
  'METADATA_OLDER_THAN_DATA',
] as const;

export type FsckCode = (typeof FSCK_CODES)[number];

export interface FsckProblem {
  code: FsckCode;
  message: string;
  details: Record<string, unknown>;
}

export interface FsckReport {
  ok: boolean;
  problems: FsckProblem[];
  checked: {
    containers: number;
    /** Snapshots a client sees. */
    snapshots: number;
    /** Snapshots deleted by name, kept while something reads through them. */
    hiddenSnapshots: number;
    tables: number;
    mapEntries: number;
    freeExtents: number;
    blocks: number;
  };
}

const MAX_PROBLEMS = 1000;

/** The pool's data files as they are now (`dataFileSizes`): each one's path and size in bytes (-1: missing). */
export interface DataFileSize {
  path: string;
  bytes: number;
}

/**
 * Reads only the committed store and the record the pool was opened with (an offline check has no core);
 * `dataFiles` (in layout order), when given, are checked to hold every mapped block; `dataMarks`
 * (read before this is called, data-marks.ts) against the pool's uuid and commit generation.
 */
export async function fsck(
  core: Pick<EngineCore, 'store' | 'record'>,
  onProgress?: (done: number, total: number) => void,
  dataFiles?: DataFileSize[],
  dataMarks?: DataMark[],
): Promise<FsckReport> {
  const { store } = core;
  const txn = store.readTransaction();
  const problems: FsckProblem[] = [];
  const report = (code: FsckCode, message: string, details: Record<string, unknown> = {}) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ code, message, details });
  };
  const yieldNow = () => new Promise((resolve) => setImmediate(resolve));
  try {
    // The pool record is written once, at create: any field that differs from what the pool opened with is corrupt.
    const pool = store.get<PoolRecord>(DB.meta, META_POOL, txn);
    if (!pool) {
      report('POOL_RECORD_INVALID', 'the pool record is missing', { missing: true });
    } else {
      const opened = core.record as unknown as Record<string, unknown>;
      const stored = pool as unknown as Record<string, unknown>;
      const fields = [...new Set([...Object.keys(opened), ...Object.keys(stored)])]
        .filter((k) => stored[k] !== opened[k])
        .sort();
      if (fields.length > 0)
        report('POOL_RECORD_INVALID', `the pool record differs from the open pool in ${fields.join(', ')}`, {
          fields,
        });
      // Striping is format 3's (data-layout.ts): an earlier format's build would read it as one file.
      const files = pool.dataFiles;
      const most = pool.formatVersion >= 3 ? MAX_DATA_FILES : 1;
      if (files !== undefined && (!Number.isInteger(files) || files < 1 || files > most))
        report(
          'POOL_RECORD_INVALID',
          `the pool record names ${files} data files (format ${pool.formatVersion}: 1 to ${most})`,
          {
            fields: ['dataFiles'],
          },
        );
    }
    const hwm = store.get<number>(DB.meta, META_HWM, txn) ?? 1;
    // What the open pool allocates within, so a bad record is reported once, not as every block out of range.
    const capacity = core.record.capacityBlocks;
    const seq = store.get<{ container: number; snapshot: number; table: number }>(DB.meta, 'seq', txn);

    const containers = new Map<number, ContainerRecord>();
    for (const { key, value } of store.entries<number, ContainerRecord>(DB.containers, {}, txn)) {
      if (value?.v !== 1 || value.id !== key)
        report('RECORD_INVALID', `container record ${key} is invalid`, { container: key });
      else containers.set(key, value);
    }
    const names = new Map<string, number>();
    for (const { key, value } of store.entries<string, number>(DB.names, {}, txn)) names.set(key, value);
    for (const c of containers.values()) {
      if (names.get(c.name) !== c.id)
        report('NAME_INDEX_MISMATCH', `name "${c.name}" does not index container ${c.id}`, {
          name: c.name,
          container: c.id,
        });
    }
    for (const [name, id] of names) {
      if (containers.get(id)?.name !== name)
        report('NAME_INDEX_MISMATCH', `name "${name}" points at container ${id}`, { name, container: id });
    }
    const snapshots = new Map<number, SnapshotRecord>();
    for (const { key, value } of store.entries<number, SnapshotRecord>(DB.snapshots, {}, txn)) {
      if (value?.v !== 1 || value.id !== key)
        report('RECORD_INVALID', `snapshot record ${key} is invalid`, { snapshot: key });
      else {
        snapshots.set(key, value);
        // Only a hidden data snapshot can be held by a reader.
        if (
          value.heldByReader !== undefined &&
          (value.heldByReader !== true || !value.hidden || value.table === null)
        )
          report('RECORD_INVALID', `snapshot record ${key} claims a reader holds it but is not hidden data`, {
            snapshot: key,
          });
      }
    }
    const snapshotNames = new Map<string, number>();
    for (const { key, value } of store.entries<[number, string], number>(DB.snapshotNames, {}, txn)) {
      snapshotNames.set(`${key[0]}\u0000${key[1]}`, value);
      const s = snapshots.get(value);
      if (!s || s.hidden || s.container !== key[0] || s.name !== key[1]) {
        report(
          'SNAPSHOT_NAME_INDEX_MISMATCH',
          `snapshot name ${key[1]} of container ${key[0]} points at ${value}`,
          { snapshot: value, container: key[0], name: key[1] },
        );
      }
    }
    const tables = new Map<number, TableRecord>();
    for (const { key, value } of store.entries<number, TableRecord>(DB.tables, {}, txn)) {
      if (value?.v !== 1 || value.id !== key)
        report('RECORD_INVALID', `table record ${key} is invalid`, { table: key });
      else tables.set(key, value);
    }
    if (seq) {
      const used = { container: containers.keys(), snapshot: snapshots.keys(), table: tables.keys() };
      for (const [kind, ids] of Object.entries(used) as Array<[keyof typeof used, Iterable<number>]>) {
        let max = 0; // a loop, not Math.max(...ids): a spread of millions of ids overflows the stack
        for (const id of ids) if (id > max) max = id;
        if (max > seq[kind])
          report('SEQUENCE_BEHIND', `the ${kind} id sequence is at ${seq[kind]}, below id ${max} in use`, {
            kind,
            sequence: seq[kind],
            max,
          });
      }
    }

    // Tables: owners, parents, chains, dependents.
    const dependents = new Map<number, number>();
    for (const t of tables.values()) {
      if (t.parent === null) continue;
      const parent = tables.get(t.parent);
      if (!parent)
        report('PARENT_MISSING', `table ${t.id} points at missing table ${t.parent}`, { table: t.id });
      else if (!parent.frozen)
        report('PARENT_NOT_FROZEN', `table ${t.id} points at unfrozen table ${t.parent}`, { table: t.id });
      dependents.set(t.parent, (dependents.get(t.parent) ?? 0) + 1);
    }
    // Every table whose chain runs into a loop would see it: report each loop once, by its tables.
    const looped = new Set<number>();
    for (const t of tables.values()) {
      const seen = new Set<number>();
      for (let cur: TableRecord | undefined = t; cur && cur.parent !== null; cur = tables.get(cur.parent)) {
        if (seen.has(cur.id)) {
          if (!looped.has(cur.id)) {
            const loop: number[] = [];
            for (let x = cur; !loop.includes(x.id); x = tables.get(x.parent!)!) loop.push(x.id);
            for (const id of loop) looped.add(id);
            const first = loop.indexOf(Math.min(...loop));
            const tablesInLoop = [...loop.slice(first), ...loop.slice(0, first)];
            report('CHAIN_CYCLE', `the parent pointers of tables ${tablesInLoop.join(' → ')} loop`, {
              table: tablesInLoop[0],
              tables: tablesInLoop,
            });
          }
          break;
        }
        seen.add(cur.id);
      }
      const owner = t.owner;
      if (owner.kind === 'container') {
        const c = containers.get(owner.id);
        if (t.frozen || c?.table !== t.id)
          report('TABLE_OWNER_INVALID', `table ${t.id} claims container ${owner.id}`, { table: t.id });
      } else if (owner.kind === 'snapshot') {
        const s = snapshots.get(owner.id);
        if (!t.frozen || s?.table !== t.id)
          report('TABLE_OWNER_INVALID', `table ${t.id} claims snapshot ${owner.id}`, { table: t.id });
      } else {
        if ((dependents.get(t.id) ?? 0) > 0)
          report('GARBAGE_HAS_DEPENDENTS', `discarded table ${t.id} still has dependents`, { table: t.id });
        if (t.parent !== null)
          report('GARBAGE_HAS_PARENT', `discarded table ${t.id} still has parent ${t.parent}`, {
            table: t.id,
            parent: t.parent,
          });
      }
    }
    for (const c of containers.values()) {
      if (c.type === 'vm') {
        if (c.table !== null)
          report('CONTAINER_TABLE_INVALID', `VM "${c.name}" has a table`, { container: c.name });
        for (const [role, id] of Object.entries(c.members)) {
          const m = containers.get(id);
          if (!m || m.memberOf?.vm !== c.id || m.memberOf.role !== role) {
            report('MEMBER_INVALID', `member ${role} of "${c.name}" does not point back`, {
              container: c.name,
              role,
            });
          }
        }
      } else {
        const t = c.table === null ? undefined : tables.get(c.table);
        if (!t || t.frozen || t.owner.kind !== 'container' || t.owner.id !== c.id) {
          report('CONTAINER_TABLE_INVALID', `container "${c.name}" has no valid current table`, {
            container: c.name,
          });
        }
      }
      if (c.importUndo !== undefined) {
        const undo = snapshots.get(c.importUndo);
        const current = c.table === null ? undefined : tables.get(c.table);
        if (
          undo?.hidden !== true ||
          undo.container !== c.id ||
          undo.table === null ||
          current === undefined ||
          current.parent !== undo.table
        )
          report('IMPORT_UNDO_INVALID', `container "${c.name}" is marked with an invalid import undo point`, {
            container: c.name,
            snapshot: c.importUndo,
          });
      }
      if (c.memberOf && containers.get(c.memberOf.vm)?.members[c.memberOf.role] !== c.id) {
        report('MEMBER_INVALID', `"${c.name}" claims membership its VM does not list`, { container: c.name });
      }
    }
    for (const s of snapshots.values()) {
      if (!s.hidden && !containers.has(s.container)) {
        report('SNAPSHOT_CONTAINER_MISSING', `snapshot ${s.name} belongs to a deleted container`, {
          snapshot: s.id,
        });
      }
      if (!s.hidden && snapshotNames.get(`${s.container}\u0000${s.name}`) !== s.id) {
        report('SNAPSHOT_NAME_INDEX_MISMATCH', `snapshot ${s.name} (${s.id}) is not indexed by name`, {
          snapshot: s.id,
        });
      }
      if (s.table === null) {
        for (const id of Object.values(s.members)) {
          if (snapshots.get(id)?.vmSnapshot !== s.id)
            report('MEMBER_INVALID', `VM snapshot ${s.id} lists member snapshot ${id} wrongly`, {
              snapshot: s.id,
              member: id,
            });
        }
        continue;
      }
      const t = tables.get(s.table);
      if (!t?.frozen || t.owner.kind !== 'snapshot' || t.owner.id !== s.id) {
        report('SNAPSHOT_TABLE_INVALID', `snapshot ${s.name} (${s.id}) has no valid frozen table`, {
          snapshot: s.id,
        });
      } else if (s.hidden && (dependents.get(t.id) ?? 0) === 0 && s.heldByReader !== true) {
        // Not one held for an NBD reader alone (heldByReader): reader pins are not stored, so a crash or a
        // close with the reader attached leaves that one, and the next open frees it.
        report(
          'HIDDEN_SNAPSHOT_UNREFERENCED',
          `hidden snapshot ${s.id} has no dependents and should have been freed`,
          {
            snapshot: s.id,
          },
        );
      }
    }
    await yieldNow();

    // Map entries and presence: every physical block owned at most once, and in range.
    const owned = new Uint8Array(Math.ceil((hwm + 1) / 8));
    const perChunk = new Map<string, number>();
    const perTable = new Map<number, number>();
    let mapEntries = 0;
    // The opened record's format says where the entries are (offline fsck reads format 1 without migrating it).
    const blocks = new BlockMap(store, core.record.formatVersion ?? CURRENT_FORMAT_VERSION);
    const approxTotal = Math.max(1, blocks.recordCount(txn));
    const invalidGroup = (table: number, group: number) =>
      report('RECORD_INVALID', `map group record ${group} of table ${table} is invalid`, { table, group });
    // The bytes of each partly owned block its entry needs (the end of its last own sub-block).
    const partEnds = new Map<number, number>();
    for (const { table: tableId, block, physical: value, mask } of blocks.entries(
      undefined,
      txn,
      invalidGroup,
    )) {
      mapEntries++;
      if (mask !== 0) {
        if (value === ZERO_BLOCK || !validMask(core.record.blockSize, mask))
          report(
            'MASK_INVALID',
            `table ${tableId} block ${block} has sub-block mask ${mask} on ${value === ZERO_BLOCK ? 'explicit zeros' : `physical ${value}`}`,
            {
              table: tableId,
              block,
              physical: value,
              mask,
            },
          );
        else partEnds.set(value, maskEnd(core.record.blockSize, mask));
      }
      if (!tables.has(tableId)) {
        report('MAP_TABLE_MISSING', `map entry for missing table ${tableId}`, { table: tableId, block });
        continue;
      }
      perTable.set(tableId, (perTable.get(tableId) ?? 0) + 1);
      const chunkKey = `${tableId}:${block >>> CHUNK_SHIFT}`;
      perChunk.set(chunkKey, (perChunk.get(chunkKey) ?? 0) + 1);
      if (value === ZERO_BLOCK) continue;
      if (!Number.isSafeInteger(value) || value < 1 || value >= hwm || value > capacity) {
        report(
          'BLOCK_OUT_OF_RANGE',
          `table ${tableId} block ${block} → physical ${value} outside 1..${hwm - 1}`,
          {
            table: tableId,
            block,
            physical: value,
          },
        );
        continue;
      }
      if (owned[value >>> 3]! & (1 << (value & 7))) {
        report('BLOCK_DOUBLE_OWNED', `physical block ${value} is mapped twice (again by table ${tableId})`, {
          physical: value,
          table: tableId,
          block,
        });
      }
      owned[value >>> 3]! |= 1 << (value & 7);
      if (mapEntries % 65536 === 0) {
        onProgress?.(mapEntries, approxTotal);
        await yieldNow();
      }
    }
    for (const t of tables.values()) {
      const entries = perTable.get(t.id) ?? 0;
      if (
        t.frozen &&
        t.owner.kind === 'snapshot' &&
        t.frozenEntries !== undefined &&
        entries !== t.frozenEntries
      )
        report(
          'FROZEN_TABLE_WRITTEN',
          `frozen table ${t.id} has ${entries} map entries; it froze with ${t.frozenEntries}`,
          { table: t.id, entries, frozenEntries: t.frozenEntries },
        );
    }
    for (const { key, value } of store.entries<[number, number], Buffer>(DB.presence, {}, txn)) {
      const [tableId, chunk] = key;
      const expected = perChunk.get(`${tableId}:${chunk}`) ?? 0;
      perChunk.delete(`${tableId}:${chunk}`);
      const bitmap = decodePresence(value);
      const bits = bitmap ? popcount(bitmap) : -1;
      if (bits !== expected) {
        report(
          'PRESENCE_MISMATCH',
          `table ${tableId} chunk ${chunk}: presence has ${bits} blocks, map has ${expected}`,
          {
            table: tableId,
            chunk,
          },
        );
      }
    }
    for (const [chunkKey, count] of perChunk) {
      const [table, chunk] = chunkKey.split(':').map(Number);
      report(
        'PRESENCE_MISMATCH',
        `table ${table} chunk ${chunk} has ${count} map entries but no presence record`,
        { table, chunk },
      );
    }
    // One layout only: a migration commits the new records, the old ones' removal and the version together.
    const otherLayout = blocks.formatVersion === 1 ? DB.mapGroups : DB.map;
    const stray = store.count(otherLayout, txn);
    if (stray > 0)
      report(
        'FORMAT_MIXED',
        `${stray} record(s) in ${otherLayout}, a map layout of another format than the pool's ${blocks.formatVersion}`,
        { db: otherLayout, records: stray },
      );
    // Exact check that each map entry's presence bit is set.
    for (const { table, block } of blocks.entries(undefined, txn)) {
      const record = store.get<Buffer>(DB.presence, [table, block >>> CHUNK_SHIFT], txn);
      const bits = record && decodePresence(record);
      const i = block & (CHUNK_BLOCKS - 1);
      if (bits && !(bits[i >>> 3]! & (1 << (i & 7)))) {
        report('PRESENCE_MISMATCH', `table ${table} block ${block} is mapped but its presence bit is clear`, {
          table,
          block,
        });
      }
    }

    // Free space must be exactly the complement of what is owned, below hwm.
    const free = new Uint8Array(owned.length);
    let freeExtents = 0;
    for (const { key: start, value: count } of store.entries<number, number>(DB.free, {}, txn)) {
      freeExtents++;
      if (!Number.isSafeInteger(count) || count < 1 || start < 1 || start + count > hwm) {
        report('FREE_EXTENT_INVALID', `free extent ${start}+${count} is outside 1..${hwm - 1}`, {
          start,
          count,
        });
        continue;
      }
      for (let b = start; b < start + count; b++) {
        if (owned[b >>> 3]! & (1 << (b & 7)))
          report('FREE_OVERLAPS_OWNED', `physical block ${b} is both free and mapped`, { physical: b });
        if (free[b >>> 3]! & (1 << (b & 7)))
          report('FREE_EXTENT_INVALID', `physical block ${b} is in two free extents`, { physical: b });
        free[b >>> 3]! |= 1 << (b & 7);
      }
    }
    let leaked = 0;
    let firstLeak = 0;
    for (let b = 1; b < hwm; b++) {
      const bit = 1 << (b & 7);
      if (!(owned[b >>> 3]! & bit) && !(free[b >>> 3]! & bit)) {
        if (leaked++ === 0) firstLeak = b;
      }
    }
    if (leaked > 0)
      report(
        'BLOCK_LEAKED',
        `${leaked} physical block(s) are neither mapped nor free (first: ${firstLeak})`,
        { leaked, firstLeak },
      );
    const invalidMasks = (table: number, group: number) =>
      report('RECORD_INVALID', `map mask record ${group} of table ${table} is invalid`, { table, group });
    for (const { table, group, masks } of blocks.maskRecords(undefined, txn, invalidMasks)) {
      for (const offset of masks.keys()) {
        const block = group * GROUP_BLOCKS + offset;
        if (blocks.get(table, block, txn) === undefined)
          report('MASK_INVALID', `table ${table} block ${block} has a sub-block mask but no map entry`, {
            table,
            block,
          });
      }
    }
    if (dataFiles) checkDataFiles(dataFiles, owned, partEnds, hwm, core.record.blockSize, report);
    const generation = store.get<number>(DB.meta, META_GENERATION, txn) ?? 0;
    for (const p of dataMarks ? dataMarkProblems(dataMarks, core.record.uuid, generation) : [])
      report(p.code, p.message, p.details);
    onProgress?.(approxTotal, approxTotal);
    return {
      ok: problems.length === 0,
      problems,
      checked: {
        containers: containers.size,
        snapshots: [...snapshots.values()].filter((s) => !s.hidden).length,
        hiddenSnapshots: [...snapshots.values()].filter((s) => s.hidden).length,
        tables: tables.size,
        mapEntries,
        freeExtents,
        blocks: hwm - 1,
      },
    };
  } finally {
    txn.done();
  }
}

/** Each data file's size against the blocks mapped in it: one DATA_FILE_SHORT per file that ends before one of them does. */
function checkDataFiles(
  files: DataFileSize[],
  owned: Uint8Array,
  partEnds: Map<number, number>,
  hwm: number,
  blockSize: number,
  report: (code: FsckCode, message: string, details: Record<string, unknown>) => void,
): void {
  if (files.length < 1 || files.length > MAX_DATA_FILES || !(blockSize > 0)) return;
  const layout = new DataLayout(files.length, blockSize);
  const past = files.map(() => ({ blocks: 0, first: 0 }));
  for (let b = 1; b < hwm; b++) {
    if (!(owned[b >>> 3]! & (1 << (b & 7)))) continue;
    const { file, position } = layout.locate(b);
    // A mapped block was written whole, or its own sub-blocks were: a file cut mid-block lost data too.
    if (position + (partEnds.get(b) ?? blockSize) <= files[file]!.bytes) continue;
    if (past[file]!.blocks++ === 0) past[file]!.first = b;
  }
  files.forEach((f, i) => {
    const { blocks, first } = past[i]!;
    if (blocks === 0) return;
    const what = f.bytes < 0 ? 'is missing' : `ends at byte ${f.bytes}`;
    report(
      'DATA_FILE_SHORT',
      `data file ${f.path} ${what}: ${blocks} mapped block(s) run past its end and read as zeros there (first: ${first})`,
      { path: f.path, bytes: f.bytes, blocks, firstBlock: first },
    );
  });
}

/** `paths`' sizes now (a block device's too; -1 where the file is missing). */
export function dataFileSizes(paths: string[]): DataFileSize[] {
  return paths.map((p) => {
    try {
      return { path: p, bytes: deviceSize(p) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { path: p, bytes: -1 };
      throw err;
    }
  });
}
