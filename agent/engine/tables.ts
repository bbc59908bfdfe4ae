/**
 * Mapping tables (the layer above the store and the write batch): tables,
 * their parent pointers, their logical → physical entries, and the chain walk.
 *
 * Invariants: a parent is always frozen; a frozen table never changes; only a
 * container's current (unfrozen) table takes writes.
 * Cost: `ownerOf` is O(1) in memory for any chain depth (presence set of the
 * current table, then the owner index of its frozen parent); `physical` is one
 * store lookup (or a staged value).
 */
import { CORRUPT } from './errors';
import { MappingEvents } from './mapping-events';
import { OwnerIndex } from './owner-index';
import { CHUNK_MASK, CHUNK_SHIFT } from './presence';
import { decodePresence, encodePresence } from './presence-record';
import type { PruneProgress } from './shadowed';
import { BlockMap } from './store/block-map';
import { GROUP_SHIFT } from './store/group-record';
import { CURRENT_FORMAT_VERSION, DB } from './store/keys';
import type { MetadataStore, StoreOp } from './store/metadata-store';
import type { TableOwner, TableRecord } from './store/records';
import { entryMask, entryPhysical, entryValue } from './sub-block';
import { TableState } from './table-state';
import type { WriteBatch } from './write-batch';

export class TableRegistry {
  readonly tables = new Map<number, TableState>();
  readonly owners: OwnerIndex;
  /** Committed map entries (an open pool is always of the current format: older ones are migrated first). */
  readonly blocks: BlockMap;
  /** Readers outside the engine told about changed entries and chains (mapping-events.ts). */
  readonly events = new MappingEvents();
  /** Per hidden table, how far the shadowed-entry pruner got (shadowed.ts); in memory, redone after a restart. */
  readonly pruneProgress = new Map<number, PruneProgress>();
  /** Tables by their parent's id (what `dependents` counts). */
  private readonly children = new Map<number, Set<TableState>>();

  constructor(
    private readonly store: MetadataStore,
    ownerIndexChunks?: number,
  ) {
    this.owners = new OwnerIndex(ownerIndexChunks);
    this.blocks = new BlockMap(store, CURRENT_FORMAT_VERSION);
  }

  /** Loads every table and its presence set; derives dependents. */
  load(): void {
    const parents = new Map<number, number | null>();
    for (const { key, value } of this.store.entries<number, TableRecord>(DB.tables)) {
      if (value?.v !== 1) throw CORRUPT(`table ${key} has an unknown record version`, { table: key });
      const table = new TableState(key, null, value.frozen, value.owner);
      table.frozenEntries = value.frozenEntries ?? null;
      this.tables.set(key, table);
      parents.set(key, value.parent);
    }
    for (const [id, parentId] of parents) {
      if (parentId === null) continue;
      const parent = this.tables.get(parentId);
      // A dangling parent is reported by fsck; leave the pointer empty so the pool still opens.
      if (parent === undefined) continue;
      const table = this.tables.get(id)!;
      table.parent = parent;
      parent.dependents++;
      this.link(table, parent);
    }
    for (const { key, value } of this.store.entries<[number, number], Buffer>(DB.presence)) {
      const table = this.tables.get(key[0]);
      const bits = decodePresence(value);
      // One that does not decode is reported by fsck (PRESENCE_MISMATCH); the pool still opens.
      if (table !== undefined && table.owner.kind !== 'garbage' && bits)
        table.presence.loadChunk(key[1], bits);
    }
    for (const [tableId, group] of this.blocks.maskedGroups())
      this.tables.get(tableId)?.maskedGroups.add(group);
  }

  get(id: number): TableState {
    const table = this.tables.get(id);
    if (table === undefined) throw CORRUPT(`mapping table ${id} is missing`, { table: id });
    return table;
  }

  create(batch: WriteBatch, id: number, parent: TableState | null, owner: TableOwner): TableState {
    const table = new TableState(id, null, false, owner);
    this.tables.set(id, table);
    batch.onAbort(() => this.tables.delete(id));
    this.setParent(batch, table, parent);
    return table;
  }

  setParent(batch: WriteBatch, table: TableState, parent: TableState | null): void {
    if (parent !== null && !parent.frozen)
      throw CORRUPT(`table ${parent.id} is not frozen and cannot be a parent`);
    const before = table.parent;
    if (before) before.dependents--;
    if (parent) parent.dependents++;
    table.parent = parent;
    this.unlink(table, before);
    this.link(table, parent);
    this.changedChain();
    batch.onAbort(() => {
      if (parent) parent.dependents--;
      if (before) before.dependents++;
      table.parent = before;
      this.unlink(table, parent);
      this.link(table, before);
    });
    batch.put(DB.tables, table.id, table.record());
  }

  /** Freezes a current table (it becomes a snapshot's table). */
  freeze(batch: WriteBatch, table: TableState, owner: TableOwner): void {
    const before = { frozen: table.frozen, owner: table.owner, entries: table.frozenEntries };
    table.frozen = true;
    table.owner = owner;
    table.frozenEntries = table.presence.count;
    this.changedChain();
    batch.onAbort(() => {
      table.frozen = before.frozen;
      table.owner = before.owner;
      table.frozenEntries = before.entries;
      this.owners.evict(table.id);
    });
    batch.put(DB.tables, table.id, table.record());
  }

  /**
   * Makes a frozen table a container's current table again. Only for one
   * nothing else reads: no dependents but the caller's, no readers (an
   * interrupted import's undo point, import-in-place.ts).
   */
  thaw(batch: WriteBatch, table: TableState, owner: TableOwner): void {
    if (table.dependents > 0 || table.readers > 0) throw CORRUPT(`table ${table.id} is still read through`);
    const before = { frozen: table.frozen, owner: table.owner, entries: table.frozenEntries };
    table.frozen = false;
    table.owner = owner;
    table.frozenEntries = null;
    this.owners.evict(table.id);
    this.changedChain();
    batch.onAbort(() => {
      table.frozen = before.frozen;
      table.owner = before.owner;
      table.frozenEntries = before.entries;
    });
    batch.put(DB.tables, table.id, table.record());
  }

  setOwner(batch: WriteBatch, table: TableState, owner: TableOwner): void {
    const before = table.owner;
    table.owner = owner;
    this.changedChain();
    batch.onAbort(() => {
      table.owner = before;
    });
    batch.put(DB.tables, table.id, table.record());
  }

  /**
   * Marks a table as garbage (its blocks are freed later by the reclaimer) and
   * detaches it from its parent. Returns the former parent, whose dependents
   * just dropped, so the caller can cascade.
   */
  discard(batch: WriteBatch, table: TableState): TableState | null {
    if (table.dependents > 0) throw CORRUPT(`table ${table.id} still has dependents`);
    if (table.readers > 0) throw CORRUPT(`table ${table.id} still has readers`);
    const parent = table.parent;
    this.setParent(batch, table, null);
    this.setOwner(batch, table, { kind: 'garbage' });
    this.owners.evict(table.id);
    return parent;
  }

  /**
   * Removes an entry of a frozen table that no one can read any more: its only
   * dependent maps that block itself (shadowed.ts). What every table reads is
   * unchanged; the entry count fsck checks a frozen table against follows.
   */
  dropShadowed(batch: WriteBatch, table: TableState, block: number): void {
    if (!table.presence.delete(block)) return;
    batch.onAbort(() => table.presence.add(block));
    batch.setMap(table.id, block, null);
    batch.markChunk(table.id, block >>> CHUNK_SHIFT);
    const before = table.frozenEntries;
    table.frozenEntries = table.presence.count;
    batch.onAbort(() => {
      table.frozenEntries = before;
    });
    // Its cached owners may name it for the block; its dependent's never do (it maps the block itself).
    this.owners.evict(table.id);
    batch.put(DB.tables, table.id, table.record());
  }

  /** Drops a fully reclaimed table from memory. */
  forget(id: number): void {
    this.tables.delete(id);
    this.owners.evict(id);
    this.pruneProgress.delete(id);
  }

  /** The one table whose parent `table` is, if exactly one is. */
  onlyChild(table: TableState): TableState | undefined {
    const children = this.children.get(table.id);
    return children?.size === 1 ? children.values().next().value : undefined;
  }

  private link(table: TableState, parent: TableState | null): void {
    if (parent === null) return;
    const children = this.children.get(parent.id) ?? new Set<TableState>();
    children.add(table);
    this.children.set(parent.id, children);
  }

  private unlink(table: TableState, parent: TableState | null): void {
    if (parent === null) return;
    const children = this.children.get(parent.id);
    children?.delete(table);
    if (children?.size === 0) this.children.delete(parent.id);
  }

  /** The table (id) that maps `block` as seen through `table`, or 0. */
  ownerOf(table: TableState, block: number): number {
    if (table.frozen) return this.owners.chunk(table, block >>> CHUNK_SHIFT)[block & CHUNK_MASK]!;
    if (table.presence.has(block)) return table.id;
    const parent = table.parent;
    if (parent === null) return 0;
    return this.owners.chunk(parent, block >>> CHUNK_SHIFT)[block & CHUNK_MASK]!;
  }

  /** Physical block of an entry that presence says exists (0 = explicit zeros). */
  physical(batch: WriteBatch, tableId: number, block: number): number {
    const staged = batch.pendingMap(tableId, block);
    if (staged !== undefined && staged !== null) return entryPhysical(staged);
    const value = staged === null ? undefined : this.blocks.get(tableId, block);
    if (value === undefined) throw CORRUPT(`table ${tableId} marks block ${block} present but has no entry`);
    return value;
  }

  /** An entry that presence says exists, as one number: physical + mask × 2^32 (sub-block.ts). */
  entry(batch: WriteBatch, tableId: number, block: number): number {
    const staged = batch.pendingMap(tableId, block);
    if (staged !== undefined && staged !== null) return staged;
    const value = staged === null ? undefined : this.blocks.get(tableId, block);
    if (value === undefined) throw CORRUPT(`table ${tableId} marks block ${block} present but has no entry`);
    if (value === 0 || !this.tables.get(tableId)?.maskedGroups.has(block >>> GROUP_SHIFT)) return value;
    return entryValue(value, this.blocks.getMask(tableId, block));
  }

  /** The sub-blocks an entry that presence says exists owns of its block (sub-block.ts); 0: all of it. */
  mask(batch: WriteBatch, tableId: number, block: number): number {
    const staged = batch.pendingMap(tableId, block);
    if (staged !== undefined) return staged === null ? 0 : entryMask(staged);
    if (!this.tables.get(tableId)?.maskedGroups.has(block >>> GROUP_SHIFT)) return 0;
    return this.blocks.getMask(tableId, block);
  }

  /** Store ops for the presence chunks the batch touched (its map entries go through `blocks.write`). */
  presenceOps(batch: WriteBatch): StoreOp[] {
    const ops: StoreOp[] = [];
    for (const [tableId, chunks] of batch.dirtyChunks) {
      const table = this.tables.get(tableId);
      for (const chunk of chunks) {
        const bits = table?.presence.chunks.get(chunk);
        ops.push({ db: DB.presence, key: [tableId, chunk], value: bits ? encodePresence(bits) : undefined });
      }
    }
    return ops;
  }

  /** The blocks `table` owns only some sub-blocks of (sub-block.ts), in group order. */
  *partlyOwned(batch: WriteBatch, table: TableState): Generator<number> {
    for (const group of table.maskedGroups)
      for (const block of [...table.presence.blocksIn(group << GROUP_SHIFT, (group + 1) << GROUP_SHIFT)])
        if (this.mask(batch, table.id, block) !== 0) yield block;
  }

  /** Sets (or replaces) an entry of a current table; `mask`: the sub-blocks it owns (0: all). */
  map(batch: WriteBatch, table: TableState, block: number, physical: number, mask = 0): void {
    if (table.presence.add(block)) batch.onAbort(() => table.presence.delete(block));
    if (mask !== 0) table.maskedGroups.add(block >>> GROUP_SHIFT);
    batch.setMap(table.id, block, entryValue(physical, mask));
    batch.markChunk(table.id, block >>> CHUNK_SHIFT);
    if (this.events.active) this.events.remapped(table.id, block);
  }

  /** Removes an entry of a current table. */
  unmap(batch: WriteBatch, table: TableState, block: number): void {
    if (table.presence.delete(block)) batch.onAbort(() => table.presence.add(block));
    batch.setMap(table.id, block, null);
    batch.markChunk(table.id, block >>> CHUNK_SHIFT);
    if (this.events.active) this.events.remapped(table.id, block);
  }

  /** A parent, owner or frozen state changed: what any table reads may have. */
  private changedChain(): void {
    if (this.events.active) this.events.reset();
  }
}
