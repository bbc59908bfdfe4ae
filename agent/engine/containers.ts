/** Containers: create, resize, relabel, membership, delete. */
import { randomUUID } from 'node:crypto';
import { zeroRange } from './block-io';
import type { EngineCore } from './core';
import {
  ALREADY_EXISTS,
  HAS_DEPENDENTS,
  INVALID_ARGUMENT,
  IS_VM_MEMBER,
  SnapsyncError,
  TYPE_MISMATCH,
} from './errors';
import { deleteSnapshot, dropTable } from './snapshots';
import type { ContainerRecord, SnapshotRecord } from './store/records';
import type { ContainerType, FileMeta } from './types';
import { checkLabels, checkName, checkRole, checkSize, checkType } from './validate';

export interface ContainerSpec {
  name: string;
  type: ContainerType;
  size?: number;
  labels?: Record<string, string>;
  file?: Partial<FileMeta>;
  /** A VM's members, role → container name: all checked before anything is created, added in the same transaction. */
  members?: Record<string, string>;
}

export function createContainer(core: EngineCore, spec: ContainerSpec): ContainerRecord {
  const name = checkName('container', spec?.name);
  const type = checkType(spec.type);
  const size = checkSize(spec.size ?? 0);
  if (type === 'vm' && size !== 0)
    throw INVALID_ARGUMENT('a VM has no size of its own; size its members', { argument: 'size' });
  if (spec.file !== undefined && type !== 'file')
    throw INVALID_ARGUMENT('file metadata is for file containers', { argument: 'file' });
  const labels = checkLabels(spec.labels);
  const { catalog, tables, batch } = core;
  if (catalog.containerIds.has(name)) throw ALREADY_EXISTS('container', name);
  const members = checkNewMembers(core, type, spec.members);
  const id = catalog.nextId(batch, 'container');
  const table =
    type === 'vm'
      ? null
      : tables.create(batch, catalog.nextId(batch, 'table'), null, { kind: 'container', id }).id;
  const record: ContainerRecord = {
    v: 1,
    id,
    uuid: randomUUID(),
    name,
    type,
    size,
    labels,
    members: {},
    memberOf: null,
    file: type === 'file' ? checkFileMeta(spec.file) : null,
    table,
    createdAt: new Date().toISOString(),
    generation: 0,
  };
  catalog.putContainer(batch, record);
  let vm = record;
  for (const [role, member] of members) vm = addMember(core, vm, role, member);
  return vm;
}

/**
 * Every member of a VM being created, checked before anything is created: a
 * create that fails leaves nothing behind (the providers rely on it).
 */
function checkNewMembers(
  core: EngineCore,
  type: ContainerType,
  members: Record<string, string> | undefined,
): Array<[string, ContainerRecord]> {
  if (members === undefined) return [];
  if (members === null || typeof members !== 'object' || Array.isArray(members))
    throw INVALID_ARGUMENT('members must be an object of role → container name', { argument: 'members' });
  const entries = Object.entries(members);
  if (entries.length > 0 && type !== 'vm')
    throw INVALID_ARGUMENT('only a VM has members', { argument: 'members' });
  const roleOf = new Map<string, string>();
  return entries.map(([role, name]) => {
    checkRole(role);
    const earlier = roleOf.get(name);
    if (earlier !== undefined) {
      throw INVALID_ARGUMENT(`"${name}" is named twice in this request (roles ${earlier} and ${role})`, {
        argument: 'members',
        member: name,
        roles: [earlier, role],
      });
    }
    roleOf.set(name, role);
    const member = core.catalog.containerByName(name);
    checkMemberFree(core, member);
    return [role, member];
  });
}

/** A container that can become a member: a vdisk or a file no VM holds. */
function checkMemberFree(core: EngineCore, member: ContainerRecord): void {
  if (member.type === 'vm')
    throw TYPE_MISMATCH('a VM member is a vdisk or a file', { container: member.name });
  if (member.memberOf) {
    const vm = core.catalog.container(member.memberOf.vm);
    throw INVALID_ARGUMENT(`"${member.name}" is already member ${member.memberOf.role} of VM "${vm.name}"`, {
      argument: 'member',
      member: member.name,
      vm: vm.name,
      role: member.memberOf.role,
    });
  }
}

function checkFileMeta(meta: Partial<FileMeta> | undefined): FileMeta {
  const out: FileMeta = { mode: meta?.mode ?? 0o644, uid: meta?.uid ?? 0, gid: meta?.gid ?? 0 };
  for (const [key, value] of Object.entries(out)) {
    if (!Number.isSafeInteger(value) || value < 0 || (key === 'mode' && value > 0o7777)) {
      throw INVALID_ARGUMENT(
        `file.${key} must be a non-negative integer${key === 'mode' ? ' ≤ 0o7777' : ''}`,
        {
          argument: `file.${key}`,
        },
      );
    }
  }
  return out;
}

/** Grows, or (when asked) shrinks and trims what falls off, so a later grow reads zeros there. */
export function resizeContainer(
  core: EngineCore,
  c: ContainerRecord,
  size: number,
  shrink: boolean,
): ContainerRecord {
  checkSize(size);
  if (c.type === 'vm')
    throw TYPE_MISMATCH('a VM has no size of its own; resize its members', { container: c.name });
  if (size < c.size) {
    if (!shrink) {
      throw INVALID_ARGUMENT(
        `shrinking "${c.name}" from ${c.size} to ${size} bytes discards data; pass shrink: true (CLI --shrink)`,
        {
          argument: 'size',
          size: c.size,
        },
      );
    }
    zeroRange(core, core.tables.get(c.table!), size, c.size - size);
  }
  const updated = { ...c, size };
  core.catalog.putContainer(core.batch, updated);
  return updated;
}

export function setLabels(
  core: EngineCore,
  c: ContainerRecord,
  labels: Record<string, string>,
): ContainerRecord {
  const updated = { ...c, labels: checkLabels(labels) };
  core.catalog.putContainer(core.batch, updated);
  return updated;
}

export function addMember(
  core: EngineCore,
  vm: ContainerRecord,
  role: string,
  member: ContainerRecord,
): ContainerRecord {
  checkRole(role);
  if (vm.type !== 'vm') throw TYPE_MISMATCH(`"${vm.name}" is a ${vm.type}, not a vm`, { container: vm.name });
  if (vm.members[role] !== undefined) throw ALREADY_EXISTS('member role', `${vm.name}.${role}`);
  checkMemberFree(core, member);
  core.catalog.putContainer(core.batch, { ...member, memberOf: { vm: vm.id, role } });
  const updated = { ...vm, members: { ...vm.members, [role]: member.id } };
  core.catalog.putContainer(core.batch, updated);
  return updated;
}

export function removeMember(core: EngineCore, vm: ContainerRecord, role: string): ContainerRecord {
  const memberId = vm.members[role];
  if (memberId === undefined)
    throw INVALID_ARGUMENT(`"${vm.name}" has no member "${role}"`, { argument: 'role' });
  // Out of the VM it is nobody's sync member any more: a plain container the operator keeps.
  const { createdBySync: _sync, ...member } = core.catalog.container(memberId);
  core.catalog.putContainer(core.batch, { ...member, memberOf: null });
  const members = { ...vm.members };
  delete members[role];
  const updated = { ...vm, members };
  core.catalog.putContainer(core.batch, updated);
  return updated;
}

/**
 * Takes the member snapshots `parts` out of VM snapshot `v` (their member is being deleted); a VM
 * snapshot left with no member goes too. The parts become snapshots of their own, deleted next.
 */
function dropFromVmSnapshot(core: EngineCore, v: SnapshotRecord, parts: Set<number>): void {
  const { catalog, batch } = core;
  const members = Object.fromEntries(Object.entries(v.members).filter(([, id]) => !parts.has(id)));
  for (const id of Object.values(v.members))
    if (parts.has(id)) catalog.putSnapshot(batch, { ...catalog.snapshot(id), vmSnapshot: null });
  if (Object.keys(members).length === 0) catalog.removeSnapshot(batch, v);
  else catalog.putSnapshot(batch, { ...v, members });
}

/** Deletes a container (a VM with its members). Refused while it has snapshots unless recursive. */
export function deleteContainer(
  core: EngineCore,
  c: ContainerRecord,
  recursive: boolean,
  detach = false,
): void {
  const { catalog, batch } = core;
  // A member deleted on its own would leave its VM without that disk, unsaid.
  if (c.memberOf && !detach)
    throw IS_VM_MEMBER(c.name, catalog.container(c.memberOf.vm).name, c.memberOf.role);
  const doomed = [c, ...Object.values(c.members).map((id) => catalog.container(id))];
  const snapshots = doomed.flatMap((d) => catalog.snapshotsOf(d.id));
  // A member's part of a VM snapshot (a sync's safety snapshot, say) goes only on request: recursive
  // takes it out of those VM snapshots, which keep their other members.
  if (c.memberOf) {
    const vmSnapshots = [
      ...new Set(snapshots.flatMap((s) => (s.vmSnapshot === null ? [] : [s.vmSnapshot]))),
    ].map((id) => catalog.snapshot(id));
    if (vmSnapshots.length > 0 && !recursive) {
      const names = vmSnapshots.map((v) => `${catalog.container(v.container).name}@${v.name}`);
      throw new SnapsyncError(
        'HAS_DEPENDENTS',
        `container "${c.name}" is part of VM snapshot${names.length > 1 ? 's' : ''} ${names.join(', ')}: ` +
          'add recursive (CLI --recursive) to take it out of them too (they keep their other members), ' +
          'or delete them first',
        { kind: 'container', name: c.name, dependents: names },
      );
    }
    for (const v of vmSnapshots) dropFromVmSnapshot(core, v, new Set(snapshots.map((s) => s.id)));
  }
  if (snapshots.length > 0 && !recursive) {
    throw HAS_DEPENDENTS(
      'container',
      c.name,
      snapshots
        .filter((s) => s.vmSnapshot === null)
        .map((s) => `${catalog.containers.get(s.container)!.name}@${s.name}`),
    );
  }
  // VM snapshots first: they release their member snapshots.
  for (const s of snapshots.sort((a, b) => (a.table === null ? -1 : 0) - (b.table === null ? -1 : 0))) {
    const current = catalog.snapshots.get(s.id);
    if (current && !current.hidden) deleteSnapshot(core, current);
  }
  if (c.memberOf) {
    const vm = catalog.container(c.memberOf.vm);
    const members = { ...vm.members };
    delete members[c.memberOf.role];
    catalog.putContainer(batch, { ...vm, members });
  }
  for (const d of doomed) {
    const record = catalog.container(d.id);
    if (record.table !== null) dropTable(core, core.tables.get(record.table));
    catalog.removeContainer(batch, record);
  }
}
