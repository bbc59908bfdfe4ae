/** Public views (types.ts) of stored records. */
import type { Catalog } from './catalog';
import type { ContainerRecord, SnapshotRecord } from './store/records';
import type { TableRegistry } from './tables';
import type { ContainerInfo, SnapshotInfo, SnapshotRef } from './types';

export function snapshotInfo(catalog: Catalog, s: SnapshotRecord): SnapshotInfo {
  const container = catalog.containers.get(s.container);
  return {
    id: s.id,
    uuid: s.uuid,
    name: s.name,
    container: container?.name ?? s.containerName,
    containerType: s.containerType,
    size: s.size,
    createdAt: s.createdAt,
    labels: { ...s.labels },
    hidden: s.hidden,
    members: { ...s.members },
    vmSnapshot: s.vmSnapshot,
    kind: s.kind,
  };
}

export function snapshotRef(catalog: Catalog, s: SnapshotRecord): SnapshotRef {
  return { id: s.id, name: s.name, container: catalog.containers.get(s.container)?.name ?? s.containerName };
}

/** The snapshot a data container's current table points at, if any. */
export function parentSnapshotOf(
  catalog: Catalog,
  tables: TableRegistry,
  c: ContainerRecord,
): SnapshotRecord | null {
  if (c.table === null) return null;
  const parent = tables.get(c.table).parent;
  if (parent === null || parent.owner.kind !== 'snapshot') return null;
  return catalog.snapshots.get(parent.owner.id) ?? null;
}

export function containerInfo(catalog: Catalog, tables: TableRegistry, c: ContainerRecord): ContainerInfo {
  const members: Record<string, string> = {};
  for (const [role, id] of Object.entries(c.members)) members[role] = catalog.container(id).name;
  let parent: SnapshotRecord | null = null;
  if (c.type === 'vm') {
    // A VM points at the VM snapshot its members were last based on, when they all agree.
    const vmSnapshots = new Set<number | null>();
    for (const id of Object.values(c.members)) {
      const p = parentSnapshotOf(catalog, tables, catalog.container(id));
      vmSnapshots.add(p?.vmSnapshot ?? null);
    }
    const [only] = vmSnapshots;
    if (vmSnapshots.size === 1 && only != null) parent = catalog.snapshots.get(only) ?? null;
  } else parent = parentSnapshotOf(catalog, tables, c);
  const syncCreated = Object.entries(c.members)
    .filter(([, id]) => catalog.container(id).createdBySync === true)
    .map(([role]) => role);
  return {
    id: c.id,
    uuid: c.uuid,
    name: c.name,
    type: c.type,
    size: c.size,
    labels: { ...c.labels },
    members,
    ...(syncCreated.length > 0 ? { syncCreatedMembers: syncCreated } : {}),
    memberOf: c.memberOf ? { vm: catalog.container(c.memberOf.vm).name, role: c.memberOf.role } : null,
    file: c.file ? { ...c.file } : null,
    createdAt: c.createdAt,
    parentSnapshot: parent ? snapshotRef(catalog, parent) : null,
    generation: c.generation,
  };
}
