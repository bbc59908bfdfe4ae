/**
 * Snapshots: freeze a container's current table in O(1) and give it a new,
 * empty one pointing at the frozen table; delete, hiding a snapshot others
 * still read through until its last dependent is gone.
 */
import { randomUUID } from 'node:crypto';
import type { EngineCore } from './core';
import { ALREADY_EXISTS, INVALID_ARGUMENT, NOT_FOUND } from './errors';
import type { ContainerRecord, SnapshotRecord } from './store/records';
import type { TableState } from './table-state';
import { checkName } from './validate';

export type SnapshotSelector = string | { container: string; snapshot: string };

/** Resolves `container@snapshot` (or an object) to a visible snapshot. */
export function findSnapshot(core: EngineCore, selector: SnapshotSelector): SnapshotRecord {
  let container: string;
  let name: string;
  if (typeof selector === 'string') {
    const at = selector.lastIndexOf('@');
    if (at <= 0 || at === selector.length - 1) {
      throw INVALID_ARGUMENT(`snapshot reference "${selector}" must look like container@snapshot`, {
        argument: 'snapshot',
      });
    }
    container = selector.slice(0, at);
    name = selector.slice(at + 1);
  } else if (selector && typeof selector === 'object') {
    container = selector.container;
    name = selector.snapshot;
  } else throw INVALID_ARGUMENT('snapshot reference is missing', { argument: 'snapshot' });
  const id = core.catalog.containerIds.get(container);
  if (id === undefined) throw NOT_FOUND('snapshot', `${container}@${name}`);
  return core.catalog.snapshotByName(core.catalog.container(id), name);
}

/**
 * `base`, or `base-1`, `base-2`, … : the first name no listed container has a
 * snapshot of. User snapshots cannot take the engine's names now, but a pool
 * made before may hold one.
 */
export function freeSnapshotName(core: EngineCore, containers: number[], base: string): string {
  for (let n = 0; ; n++) {
    const name = n === 0 ? base : `${base}-${n}`;
    if (!containers.some((id) => core.catalog.hasSnapshotName(id, name))) return name;
  }
}

/** Freezes one data container's current table as snapshot `name`. Returns the snapshot record. */
export function freezeContainer(
  core: EngineCore,
  container: ContainerRecord,
  name: string,
  options: {
    kind: 'user' | 'safety';
    labels: Record<string, string>;
    vmSnapshot: number | null;
    replaceTable: boolean;
  },
): SnapshotRecord {
  const { catalog, tables, batch } = core;
  if (catalog.hasSnapshotName(container.id, name))
    throw ALREADY_EXISTS('snapshot', `${container.name}@${name}`);
  const id = catalog.nextId(batch, 'snapshot');
  const frozen = tables.get(container.table!);
  tables.freeze(batch, frozen, { kind: 'snapshot', id });
  const record = snapshotRecord(id, container, name, {
    table: frozen.id,
    vmSnapshot: options.vmSnapshot,
    labels: options.labels,
    kind: options.kind,
  });
  catalog.putSnapshot(batch, record);
  if (options.replaceTable) {
    const current = tables.create(batch, catalog.nextId(batch, 'table'), frozen, {
      kind: 'container',
      id: container.id,
    });
    catalog.putContainer(batch, { ...container, table: current.id });
  }
  return record;
}

export function snapshotRecord(
  id: number,
  container: ContainerRecord,
  name: string,
  fields: Pick<SnapshotRecord, 'table' | 'vmSnapshot' | 'labels' | 'kind'> &
    Partial<Pick<SnapshotRecord, 'members'>>,
): SnapshotRecord {
  return {
    v: 1,
    id,
    uuid: randomUUID(),
    name,
    container: container.id,
    containerName: container.name,
    containerType: container.type,
    size: container.type === 'vm' ? 0 : container.size,
    members: {},
    createdAt: new Date().toISOString(),
    hidden: false,
    ...fields,
  };
}

/** Snapshots a container (a VM: all its members, in the same transaction). */
export function takeSnapshot(
  core: EngineCore,
  container: ContainerRecord,
  name: string,
  kind: 'user' | 'safety',
  labels: Record<string, string>,
  roles?: string[],
): SnapshotRecord {
  checkName('snapshot', name);
  const { catalog, batch } = core;
  // A hidden snapshot below the table that freezes now may hold blocks it shadows (shadowed.ts).
  core.scheduleReclaim();
  if (container.type !== 'vm') {
    return freezeContainer(core, container, name, { kind, labels, vmSnapshot: null, replaceTable: true });
  }
  if (catalog.hasSnapshotName(container.id, name))
    throw ALREADY_EXISTS('snapshot', `${container.name}@${name}`);
  const id = catalog.nextId(batch, 'snapshot');
  const members: Record<string, number> = {};
  for (const [role, memberId] of Object.entries(container.members)) {
    if (roles && !roles.includes(role)) continue;
    const member = catalog.container(memberId);
    members[role] = freezeContainer(core, member, name, {
      kind,
      labels,
      vmSnapshot: id,
      replaceTable: true,
    }).id;
  }
  const record = snapshotRecord(id, container, name, {
    table: null,
    members,
    vmSnapshot: null,
    labels,
    kind,
  });
  catalog.putSnapshot(batch, record);
  return record;
}

/**
 * Deletes a snapshot. One that other tables still read through, or that an
 * NBD reader has pinned, is hidden (its name is free again) and goes once its
 * last dependent and its last reader are gone.
 */
export function deleteSnapshot(core: EngineCore, snapshot: SnapshotRecord): void {
  const { catalog, batch } = core;
  if (snapshot.table === null) {
    for (const memberId of Object.values(snapshot.members)) {
      const member = catalog.snapshots.get(memberId);
      if (member) releaseSnapshot(core, { ...member, vmSnapshot: null });
    }
    catalog.removeSnapshot(batch, snapshot);
    return;
  }
  releaseSnapshot(core, snapshot);
}

function releaseSnapshot(core: EngineCore, snapshot: SnapshotRecord): void {
  const table = core.tables.get(snapshot.table!);
  if (table.dependents > 0 || table.readers > 0) {
    core.catalog.putSnapshot(core.batch, hiddenRecord(snapshot, table));
    // What its one dependent maps again is read by no one now (shadowed.ts).
    core.scheduleReclaim();
    return;
  }
  core.catalog.removeSnapshot(core.batch, snapshot);
  dropTable(core, table);
}

/**
 * The hidden form of a snapshot. One kept for its readers alone says so:
 * pins are not stored, so the next open must know to free it (and fsck that
 * it is not a leak).
 */
function hiddenRecord(snapshot: SnapshotRecord, table: TableState): SnapshotRecord {
  const { heldByReader: _, ...record } = snapshot;
  return table.dependents === 0 && table.readers > 0
    ? { ...record, hidden: true, heldByReader: true }
    : { ...record, hidden: true };
}

/**
 * Discards a table nobody reads through any more, then frees the hidden
 * snapshots below it that just lost their last dependent.
 */
export function dropTable(core: EngineCore, table: TableState): void {
  releaseChain(core, core.tables.discard(core.batch, table));
}

/**
 * Walks down from a table that just lost a dependent (or its last reader),
 * freeing hidden snapshots nobody reads any more. It stops at one a reader
 * still pins, marking it as held by that reader alone.
 */
export function releaseChain(core: EngineCore, from: TableState | null): void {
  let parent = from;
  while (parent !== null && parent.dependents === 0 && parent.owner.kind === 'snapshot') {
    const snapshot = core.catalog.snapshots.get(parent.owner.id);
    if (!snapshot?.hidden) break;
    if (parent.readers > 0) {
      if (snapshot.heldByReader !== true)
        core.catalog.putSnapshot(core.batch, hiddenRecord(snapshot, parent));
      break;
    }
    core.catalog.removeSnapshot(core.batch, snapshot);
    parent = core.tables.discard(core.batch, parent);
  }
  core.scheduleReclaim();
}
