/**
 * An import into an existing vdisk or file, all or nothing.
 *
 * Begin (one commit): the container's current table is frozen as a hidden
 * snapshot, the **undo point** (no name lookup or listing finds it), the
 * container gets a new empty table on top of it, and its record is marked
 * `importUndo: <that snapshot>`. The import writes into the new table with
 * the normal copy-on-write writes, so the undo point keeps every old byte.
 * Complete (one commit, with the import's idempotency record): the mark goes;
 * when the new table maps every block the undo point's table maps (an image
 * as large as the data it replaces), the new table takes the undo point's
 * parent and the undo point is discarded (its blocks go to the reclaimer),
 * else the undo point stays as a hidden snapshot under the container.
 * Restore (an import that failed, or a marked container at open; one
 * commit): the new table is discarded and the undo point's table becomes the
 * container's current table again, with the size it had: the container is
 * then exactly what it was (same table, uuid, generation and size).
 *
 * Callers hold the container exclusively meanwhile (the agent's container
 * lock); NBD sessions never reach a marked container (Pool.attachedContainer).
 * Cost: O(1) metadata entries at begin, complete and restore; complete also
 * compares the two tables' in-memory presence bitmaps (512 bytes per 4096
 * blocks the old table maps).
 */
import type { EngineCore, MutationOptions } from './core';
import { CORRUPT, INVALID_ARGUMENT, TYPE_MISMATCH } from './errors';
import { ImportWriter } from './import-writer';
import type { PresenceSet } from './presence';
import { dropTable, freeSnapshotName, snapshotRecord } from './snapshots';
import type { ContainerRecord, SnapshotRecord } from './store/records';
import type { TableState } from './table-state';
import type { ContainerInfo } from './types';

export class ImportInPlace extends ImportWriter {
  private constructor(
    core: EngineCore,
    private readonly id: number,
    private readonly undo: number,
    private readonly info: (c: ContainerRecord) => ContainerInfo,
  ) {
    super(core);
  }

  /** Sets the undo point and the mark on `container` in one commit. */
  static begin(
    core: EngineCore,
    container: ContainerRecord,
    info: (c: ContainerRecord) => ContainerInfo,
  ): ImportInPlace {
    if (container.type === 'vm')
      throw TYPE_MISMATCH('import into a vdisk or file, not a VM', { container: container.name });
    const marked = core.mutate(() => markForImport(core, container));
    return new ImportInPlace(core, marked.id, marked.importUndo!, info);
  }

  protected get record(): ContainerRecord {
    this.core.assertOpen();
    const c = this.core.catalog.containers.get(this.id);
    if (this.done || c?.importUndo !== this.undo)
      throw INVALID_ARGUMENT('the import was completed or abandoned', { argument: 'container' });
    return c;
  }

  /**
   * Keeps the import. Its data is synced and its map committed first; the
   * mark goes in the commit that stores `result` under the idempotency key.
   */
  complete<T>(result: (info: ContainerInfo) => T, options: MutationOptions = {}): T {
    const c = this.record;
    const value = this.core.mutate(() => result(this.info(unmarkImport(this.core, c))), options);
    this.done = true;
    return value;
  }

  /**
   * Puts the container back as it was before the import. If even that
   * commit fails (the device still failing), the mark stays, stored: the
   * next open, or the next import into the container, restores it.
   */
  abandon(): void {
    if (this.done || this.core.closed) return;
    this.done = true;
    const c = this.core.catalog.containers.get(this.id);
    if (c?.importUndo !== this.undo) return;
    try {
      this.core.mutate(() => restoreImport(this.core, c));
    } catch {
      /* left marked: restored at the next open */
    }
  }
}

/** Freezes the current table as the hidden undo point; the container gets a new table on it and the mark. */
function markForImport(core: EngineCore, container: ContainerRecord): ContainerRecord {
  const { catalog, tables, batch } = core;
  // A mark left by an import whose restore failed: start from the content before that one.
  const c = container.importUndo === undefined ? container : restoreImport(core, container);
  const id = catalog.nextId(batch, 'snapshot');
  const frozen = tables.get(c.table!);
  tables.freeze(batch, frozen, { kind: 'snapshot', id });
  catalog.putSnapshot(batch, {
    ...snapshotRecord(id, c, freeSnapshotName(core, [c.id], `import-undo-${id}`), {
      table: frozen.id,
      vmSnapshot: null,
      labels: {},
      kind: 'safety',
    }),
    hidden: true,
  });
  const current = tables.create(batch, catalog.nextId(batch, 'table'), frozen, {
    kind: 'container',
    id: c.id,
  });
  const marked: ContainerRecord = { ...c, table: current.id, importUndo: id };
  catalog.putContainer(batch, marked);
  return marked;
}

/** Drops the mark; discards the undo point when the new table covers all it maps. Returns the record. */
function unmarkImport(core: EngineCore, c: ContainerRecord): ContainerRecord {
  const { catalog, tables, batch } = core;
  const { importUndo: _, ...plain } = c;
  catalog.putContainer(batch, plain);
  const undo = undoPoint(core, c);
  if (undo === null) return plain;
  const frozen = tables.get(undo.table!);
  const current = tables.get(c.table!);
  if (
    current.parent === frozen &&
    frozen.dependents === 1 &&
    frozen.readers === 0 &&
    covers(current.presence, frozen.presence) &&
    !readsThroughAny(core, current, frozen)
  ) {
    // Every block the old table maps is shadowed: read through its parent instead, nothing changes.
    tables.setParent(batch, current, frozen.parent);
    catalog.removeSnapshot(batch, undo);
    tables.discard(batch, frozen);
    core.scheduleReclaim();
  }
  return plain;
}

/** The mark's undo point if it is one (a hidden data snapshot of the container), else null. */
function undoPoint(core: EngineCore, c: ContainerRecord): SnapshotRecord | null {
  const undo = c.importUndo === undefined ? undefined : core.catalog.snapshots.get(c.importUndo);
  return undo?.hidden === true && undo.container === c.id && undo.table !== null ? undo : null;
}

/** Puts a marked container back on its undo point (the content, table and size from before). Returns the record. */
function restoreImport(core: EngineCore, c: ContainerRecord): ContainerRecord {
  const { catalog, tables, batch } = core;
  const undo = undoPoint(core, c);
  if (undo === null)
    throw CORRUPT(`container "${c.name}" is marked with an invalid import undo point`, { container: c.name });
  const { importUndo: _, ...plain } = c;
  const frozen = tables.get(undo.table!);
  const current = tables.get(c.table!);
  let table: number;
  if (current.parent === frozen && frozen.dependents === 1 && frozen.readers === 0) {
    tables.discard(batch, current);
    tables.thaw(batch, frozen, { kind: 'container', id: c.id });
    catalog.removeSnapshot(batch, undo);
    table = frozen.id;
  } else {
    // Something was based on the import's table (not possible through the agent): a new table on the undo point.
    dropTable(core, current);
    table = tables.create(batch, catalog.nextId(batch, 'table'), frozen, { kind: 'container', id: c.id }).id;
  }
  const restored: ContainerRecord = { ...plain, table, size: undo.size };
  catalog.putContainer(batch, restored);
  core.scheduleReclaim();
  return restored;
}

/** Restores every container an interrupted import left marked (at open), in one commit. Returns their names. */
export function restoreInterruptedImports(core: EngineCore): string[] {
  // An invalid mark is left for fsck to report (IMPORT_UNDO_INVALID): the pool still opens.
  const marked = [...core.catalog.containers.values()].filter((c) => undoPoint(core, c) !== null);
  if (marked.length === 0) return [];
  core.mutate(() => {
    for (const c of marked) restoreImport(core, c);
  });
  return marked.map((c) => c.name);
}

/** True when every block `inner` has is in `outer`. */
/** Whether `table` owns only some sub-blocks (sub-block.ts) of a block `below` maps: it reads the rest there. */
function readsThroughAny(core: EngineCore, table: TableState, below: TableState): boolean {
  for (const block of core.tables.partlyOwned(core.batch, table)) if (below.presence.has(block)) return true;
  return false;
}

function covers(outer: PresenceSet, inner: PresenceSet): boolean {
  for (const [index, bits] of inner.chunks) {
    const other = outer.chunks.get(index);
    if (other === undefined) return false;
    for (let i = 0; i < bits.length; i++) if ((bits[i]! & ~other[i]!) !== 0) return false;
  }
  return true;
}
