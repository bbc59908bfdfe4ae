/** Clone (snapshot → new container) and revert (container → one of its own snapshots), both O(1) per member. */
import { randomUUID } from 'node:crypto';
import { deleteContainer } from './containers';
import type { EngineCore } from './core';
import { ALREADY_EXISTS, INVALID_ARGUMENT, SnapsyncError } from './errors';
import { dropTable } from './snapshots';
import type { ContainerRecord, SnapshotRecord } from './store/records';
import { checkLabels, checkName } from './validate';

export function cloneSnapshot(
  core: EngineCore,
  source: SnapshotRecord,
  name: string,
  labels: Record<string, string> | undefined,
): ContainerRecord {
  checkName('container', name);
  const { catalog, tables, batch } = core;
  if (catalog.containerIds.has(name)) throw ALREADY_EXISTS('container', name);
  const sourceContainer = catalog.containers.get(source.container);
  const id = catalog.nextId(batch, 'container');
  const make = (
    memberName: string,
    s: SnapshotRecord,
    cid: number,
    memberOf: ContainerRecord['memberOf'],
  ) => {
    const table = tables.create(batch, catalog.nextId(batch, 'table'), tables.get(s.table!), {
      kind: 'container',
      id: cid,
    });
    const original = catalog.containers.get(s.container);
    const record: ContainerRecord = {
      v: 1,
      id: cid,
      uuid: randomUUID(),
      name: memberName,
      type: s.containerType,
      size: s.size,
      labels: {},
      members: {},
      memberOf,
      file: s.containerType === 'file' ? { ...(original?.file ?? { mode: 0o644, uid: 0, gid: 0 }) } : null,
      table: table.id,
      createdAt: new Date().toISOString(),
      generation: 1,
    };
    catalog.putContainer(batch, record);
    return record;
  };
  if (source.table !== null) {
    return make(name, source, id, null);
  }
  const members: Record<string, number> = {};
  for (const [role, snapshotId] of Object.entries(source.members)) {
    const memberName = `${name}-${role}`;
    if (catalog.containerIds.has(memberName)) throw ALREADY_EXISTS('container', memberName);
    members[role] = make(memberName, catalog.snapshot(snapshotId), catalog.nextId(batch, 'container'), {
      vm: id,
      role,
    }).id;
  }
  const vm: ContainerRecord = {
    v: 1,
    id,
    uuid: randomUUID(),
    name,
    type: 'vm',
    size: 0,
    labels: checkLabels(labels ?? sourceContainer?.labels),
    members,
    memberOf: null,
    file: null,
    table: null,
    createdAt: new Date().toISOString(),
    generation: 1,
  };
  catalog.putContainer(batch, vm);
  return vm;
}

/** Discards the container's current state and bases it on one of its own snapshots. */
export function revertContainer(
  core: EngineCore,
  container: ContainerRecord,
  snapshot: SnapshotRecord,
): ContainerRecord {
  const { catalog, tables, batch } = core;
  if (snapshot.container !== container.id) {
    throw INVALID_ARGUMENT(
      `"${snapshot.name}" is not a snapshot of "${container.name}"; use sync for another's`,
      {
        argument: 'snapshot',
      },
    );
  }
  const pairs: Array<[ContainerRecord, SnapshotRecord]> =
    snapshot.table !== null
      ? [[container, snapshot]]
      : Object.entries(snapshot.members).map(([role, id]) => {
          const memberId = container.members[role];
          if (memberId === undefined) {
            throw INVALID_ARGUMENT(`"${container.name}" no longer has member "${role}" to revert`, {
              argument: 'snapshot',
            });
          }
          return [catalog.container(memberId), catalog.snapshot(id)];
        });
  if (snapshot.table === null) deleteSyncCreatedMembers(core, container, snapshot);
  for (const [member, s] of pairs) {
    dropTable(core, tables.get(member.table!));
    const fresh = tables.create(batch, catalog.nextId(batch, 'table'), tables.get(s.table!), {
      kind: 'container',
      id: member.id,
    });
    catalog.putContainer(batch, {
      ...catalog.container(member.id),
      table: fresh.id,
      size: s.size,
      generation: member.generation + 1,
    });
  }
  if (container.type === 'vm')
    catalog.putContainer(batch, { ...catalog.container(container.id), generation: container.generation + 1 });
  return catalog.container(container.id);
}

/**
 * A VM goes back to the member set it had at `snapshot`: the members that
 * syncs since created (named by their safety snapshots, this one included)
 * hold the source's data and nothing else had them, so they are deleted. One
 * that has snapshots of its own is refused (HAS_DEPENDENTS) before anything
 * changes. One the operator took out of the VM, or a role now held by another
 * container, is not the sync's any more and is left alone.
 */
function deleteSyncCreatedMembers(core: EngineCore, vm: ContainerRecord, snapshot: SnapshotRecord): void {
  const { catalog } = core;
  const doomed: Array<{ role: string; member: ContainerRecord; sync: SnapshotRecord }> = [];
  for (const later of catalog.snapshotsOf(vm.id)) {
    if (later.id < snapshot.id || later.createdMembers === undefined) continue;
    for (const [role, id] of Object.entries(later.createdMembers)) {
      if (vm.members[role] !== id || snapshot.members[role] !== undefined) continue;
      if (doomed.some((d) => d.member.id === id)) continue;
      doomed.push({ role, member: catalog.container(id), sync: later });
    }
  }
  for (const { role, member, sync } of doomed) {
    const own = catalog.snapshotsOf(member.id);
    if (own.length === 0) continue;
    const names = [
      ...new Set(
        own.map((s) =>
          s.vmSnapshot === null
            ? `${member.name}@${s.name}`
            : `${vm.name}@${catalog.snapshot(s.vmSnapshot).name}`,
        ),
      ),
    ];
    throw new SnapsyncError(
      'HAS_DEPENDENTS',
      `revert of "${vm.name}" to ${snapshot.name} would delete ${member.name} (member ${role}, created by ` +
        `the sync that kept ${sync.name}), but it has snapshots: ${names.join(', ')}. Delete them first`,
      { kind: 'container', name: member.name, role, dependents: names },
    );
  }
  for (const { member } of doomed) deleteContainer(core, catalog.container(member.id), false, true);
}
