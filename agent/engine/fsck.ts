/**
 * fsck: checks every invariant of the committed metadata, reading one
 * consistent store snapshot (not the in-memory state), and names each problem
 * with a stable code. Problems are reported, never repaired here.
 * Cost: one pass over every record and map entry, a bitmap of hwm bits.
 */
import type { EngineCore } from './core';
import { CHUNK_BLOCKS, CHUNK_SHIFT, popcount } from './presence';
import { DB, META_HWM, META_POOL, SUPPORTED_FORMAT_VERSIONS, ZERO_BLOCK } from './store/keys';
import type { ContainerRecord, PoolRecord, SnapshotRecord, TableRecord } from './store/records';

export const FSCK_CODES = [
  'POOL_RECORD_INVALID',
  'RECORD_INVALID',
  'NAME_INDEX_MISMATCH',
  'CONTAINER_TABLE_INVALID',
  'MEMBER_INVALID',
  'SNAPSHOT_TABLE_INVALID',
  'SNAPSHOT_CONTAINER_MISSING',
  'SNAPSHOT_NAME_INDEX_MISMATCH',
  'HIDDEN_SNAPSHOT_UNREFERENCED',
  'TABLE_OWNER_INVALID',
  'PARENT_MISSING',
  'PARENT_NOT_FROZEN',
  'CHAIN_CYCLE',
  'GARBAGE_HAS_DEPENDENTS',
  'MAP_TABLE_MISSING',
  'BLOCK_OUT_OF_RANGE',
  'BLOCK_DOUBLE_OWNED',
  'BLOCK_LEAKED',
  'FREE_EXTENT_INVALID',
  'FREE_OVERLAPS_OWNED',
  'PRESENCE_MISMATCH',
  'SEQUENCE_BEHIND',
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
    snapshots: number;
    tables: number;
    mapEntries: number;
    freeExtents: number;
    blocks: number;
  };
}

const MAX_PROBLEMS = 1000;

export async function fsck(
  core: EngineCore,
  onProgress?: (done: number, total: number) => void,
): Promise<FsckReport> {
  core.commit();
  const { store } = core;
  const txn = store.readTransaction();
  const problems: FsckProblem[] = [];
  const report = (code: FsckCode, message: string, details: Record<string, unknown> = {}) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ code, message, details });
  };
  const yieldNow = () => new Promise((resolve) => setImmediate(resolve));
  try {
    const pool = store.get<PoolRecord>(DB.meta, META_POOL, txn);
    if (
      !pool ||
      !SUPPORTED_FORMAT_VERSIONS.includes(pool.formatVersion) ||
      pool.blockSize !== core.blockSize
    ) {
      report('POOL_RECORD_INVALID', 'pool record is missing or does not match the open pool');
    }
    const hwm = store.get<number>(DB.meta, META_HWM, txn) ?? 1;
    const capacity = pool?.capacityBlocks ?? 0;
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
        report('NAME_INDEX_MISMATCH', `name "${c.name}" does not index container ${c.id}`);
    }
    for (const [name, id] of names) {
      if (containers.get(id)?.name !== name)
        report('NAME_INDEX_MISMATCH', `name "${name}" points at container ${id}`);
    }
    const snapshots = new Map<number, SnapshotRecord>();
    for (const { key, value } of store.entries<number, SnapshotRecord>(DB.snapshots, {}, txn)) {
      if (value?.v !== 1 || value.id !== key)
        report('RECORD_INVALID', `snapshot record ${key} is invalid`, { snapshot: key });
      else snapshots.set(key, value);
    }
    const snapshotNames = new Map<string, number>();
    for (const { key, value } of store.entries<[number, string], number>(DB.snapshotNames, {}, txn)) {
      snapshotNames.set(`${key[0]}\u0000${key[1]}`, value);
      const s = snapshots.get(value);
      if (!s || s.hidden || s.container !== key[0] || s.name !== key[1]) {
        report(
          'SNAPSHOT_NAME_INDEX_MISMATCH',
          `snapshot name ${key[1]} of container ${key[0]} points at ${value}`,
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
      const maxOf = (ids: Iterable<number>) => Math.max(0, ...ids);
      if (
        maxOf(containers.keys()) > seq.container ||
        maxOf(snapshots.keys()) > seq.snapshot ||
        maxOf(tables.keys()) > seq.table
      ) {
        report('SEQUENCE_BEHIND', 'an id sequence is behind the records it numbered');
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
    for (const t of tables.values()) {
      const seen = new Set<number>();
      for (let cur: TableRecord | undefined = t; cur && cur.parent !== null; cur = tables.get(cur.parent)) {
        if (seen.has(cur.id)) {
          report('CHAIN_CYCLE', `the chain of table ${t.id} loops`, { table: t.id });
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
      } else if ((dependents.get(t.id) ?? 0) > 0) {
        report('GARBAGE_HAS_DEPENDENTS', `discarded table ${t.id} still has dependents`, { table: t.id });
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
            report('MEMBER_INVALID', `VM snapshot ${s.id} lists member snapshot ${id} wrongly`);
        }
        continue;
      }
      const t = tables.get(s.table);
      if (!t?.frozen || t.owner.kind !== 'snapshot' || t.owner.id !== s.id) {
        report('SNAPSHOT_TABLE_INVALID', `snapshot ${s.name} (${s.id}) has no valid frozen table`, {
          snapshot: s.id,
        });
      } else if (s.hidden && (dependents.get(t.id) ?? 0) === 0) {
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
    let mapEntries = 0;
    const approxTotal = Math.max(1, store.db(DB.map).getCount({ transaction: txn } as never));
    for (const { key, value } of store.entries<[number, number], number>(DB.map, {}, txn)) {
      mapEntries++;
      const [tableId, block] = key;
      if (!tables.has(tableId)) {
        report('MAP_TABLE_MISSING', `map entry for missing table ${tableId}`, { table: tableId, block });
        continue;
      }
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
    for (const { key, value } of store.entries<[number, number], Buffer>(DB.presence, {}, txn)) {
      const [tableId, chunk] = key;
      const expected = perChunk.get(`${tableId}:${chunk}`) ?? 0;
      perChunk.delete(`${tableId}:${chunk}`);
      const bits = popcount(value);
      if (bits !== expected || value.length * 8 !== CHUNK_BLOCKS) {
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
      report('PRESENCE_MISMATCH', `table:chunk ${chunkKey} has ${count} map entries but no presence record`);
    }
    // Exact check that each map entry's presence bit is set.
    for (const { key } of store.entries<[number, number], number>(DB.map, {}, txn)) {
      const bits = store.get<Buffer>(DB.presence, [key[0], key[1] >>> CHUNK_SHIFT], txn);
      const i = key[1] & (CHUNK_BLOCKS - 1);
      if (bits && !(bits[i >>> 3]! & (1 << (i & 7)))) {
        report(
          'PRESENCE_MISMATCH',
          `table ${key[0]} block ${key[1]} is mapped but its presence bit is clear`,
        );
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
    for (const t of tables.values())
      if (t.owner.kind === 'garbage' && t.parent !== null)
        report('GARBAGE_HAS_DEPENDENTS', `discarded table ${t.id} still has a parent`);
    onProgress?.(approxTotal, approxTotal);
    return {
      ok: problems.length === 0,
      problems,
      checked: {
        containers: containers.size,
        snapshots: snapshots.size,
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
