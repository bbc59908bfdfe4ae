/** Clone (snapshot → new container) and revert (container → one of its own snapshots), both O(1) per member. */
import { randomUUID } from 'node:crypto';
import type { EngineCore } from './core';
import { ALREADY_EXISTS, INVALID_ARGUMENT } from './errors';
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
