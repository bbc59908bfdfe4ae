/**
 * Sync (the patent's claim): make a container's data match another
 * container's snapshot without copying data.
 *
 * 1. optionally freeze the target's current table as a safety snapshot;
 * 2. identity hooks capture the target's identity;
 * 3. give the target a new, empty current table whose parent is the snapshot's table;
 * 4. identity hooks compare and write the target's values back (copy-on-write);
 * all in one metadata transaction. The container record (name, UUID, labels,
 * file metadata) is never taken from the source.
 * Cost: O(members + blocks the hooks write), independent of the disks' sizes.
 */

import { randomUUID } from 'node:crypto';
import type { EngineCore } from './core';
import { INVALID_ARGUMENT, SnapsyncError, TYPE_MISMATCH } from './errors';
import { containerInfo, snapshotInfo } from './infos';
import { dropTable, freeSnapshotName, freezeContainer, takeSnapshot } from './snapshots';
import type { ContainerRecord, SnapshotRecord } from './store/records';
import type { ContainerInfo, ContainerView, SnapshotInfo } from './types';
import { EngineContainerView } from './view';

export interface SyncMember {
  /** Role in the VM, or null for a plain vdisk/file sync. */
  role: string | null;
  target: ContainerInfo;
  source: SnapshotInfo;
  view: ContainerView;
}

/** A container the snapshot was taken of: the source VM or plain container (role null) and each member. */
export interface SourceContainer {
  role: string | null;
  name: string;
  /** null when the container was deleted since (its snapshot is hidden). */
  uuid: string | null;
}

export interface SyncContext {
  /** What runs the hooks (default sync): a clone's target is new, with no identity of its own (clone-identity.ts). */
  operation?: 'sync' | 'clone';
  target: ContainerInfo;
  source: SnapshotInfo;
  members: SyncMember[];
  /** The source's containers, every role of the snapshot (synced or not): what a target must not point at. */
  sourceContainers: SourceContainer[];
}

export interface SyncHooks<Captured, Report> {
  /** Before the new table: read the target's identity. */
  capture(context: SyncContext): Captured;
  /** After: compare and write the captured values back into the new table. */
  restore(context: SyncContext, captured: Captured): Report;
}

export interface SyncOptions<Report> {
  safetySnapshot?: boolean;
  /** VM: roles to sync (default: every role in the snapshot). */
  members?: string[];
  hooks?: SyncHooks<unknown, Report>;
}

export interface SyncResult<Report> {
  target: ContainerInfo;
  source: SnapshotInfo;
  safetySnapshot: SnapshotInfo | null;
  members: Array<{ role: string | null; container: string; source: string }>;
  identity: Report | null;
  generation: number;
}

interface Pair {
  role: string | null;
  target: ContainerRecord;
  source: SnapshotRecord;
  /** The sync created this member (the target lacked the role). */
  created: boolean;
}

export function syncContainer<Report>(
  core: EngineCore,
  target: ContainerRecord,
  source: SnapshotRecord,
  options: SyncOptions<Report>,
): SyncResult<Report> {
  const { catalog, tables, batch } = core;
  if (target.type !== source.containerType) {
    throw TYPE_MISMATCH(
      `cannot sync ${target.type} "${target.name}" to a snapshot of a ${source.containerType}`,
      {
        target: target.name,
        targetType: target.type,
        sourceType: source.containerType,
      },
    );
  }
  const pairs = pairMembers(core, target, source, options.members);
  const generation = target.generation + 1;

  const views = new Map<number, EngineContainerView>();
  const sourceContainers = sourceContainersOf(core, source);
  const context = (): SyncContext => {
    const t = catalog.container(target.id);
    return {
      target: containerInfo(catalog, tables, t),
      source: snapshotInfo(catalog, source),
      members: pairs.map((p) => {
        let view = views.get(p.target.id);
        if (!view) {
          view = new EngineContainerView(core, p.target.id);
          views.set(p.target.id, view);
        }
        return {
          role: p.role,
          target: containerInfo(catalog, tables, catalog.container(p.target.id)),
          source: snapshotInfo(catalog, p.source),
          view,
        };
      }),
      sourceContainers,
    };
  };
  const captured = options.hooks ? options.hooks.capture(context()) : null;

  let safety: SnapshotRecord | null = null;
  if (options.safetySnapshot !== false) {
    const roles = pairs.map((p) => p.role).filter((r): r is string => r !== null);
    const frozen = [target.id, ...pairs.map((p) => p.target.id)];
    const name = freeSnapshotName(core, frozen, `safety-g${generation}`);
    safety =
      target.type === 'vm'
        ? takeSnapshot(core, target, name, 'safety', {}, roles)
        : freezeContainer(core, target, name, {
            kind: 'safety',
            labels: {},
            vmSnapshot: null,
            replaceTable: false,
          });
    // The new members are not in the safety snapshot (the target did not have them): it names them, for revert.
    const created = pairs.filter((p) => p.created && p.role !== null);
    if (created.length > 0) {
      safety = {
        ...safety,
        createdMembers: Object.fromEntries(created.map((p) => [p.role as string, p.target.id])),
      };
      catalog.putSnapshot(batch, safety);
    }
  }

  for (const pair of pairs) {
    const current = catalog.container(pair.target.id);
    const snapshotTable = tables.get(pair.source.table!);
    const old = tables.get(current.table!);
    // After a VM safety snapshot the member already has a fresh table; it is replaced just the same.
    if (!old.frozen) dropTable(core, old);
    const fresh = tables.create(batch, catalog.nextId(batch, 'table'), snapshotTable, {
      kind: 'container',
      id: current.id,
    });
    catalog.putContainer(batch, {
      ...current,
      table: fresh.id,
      size: pair.source.size,
      generation: current.generation + 1,
    });
  }
  if (target.type === 'vm') catalog.putContainer(batch, { ...catalog.container(target.id), generation });

  const identity = options.hooks ? restoreIdentity(options.hooks, context(), captured) : null;
  const final = catalog.container(target.id);
  return {
    target: containerInfo(catalog, tables, final),
    source: snapshotInfo(catalog, source),
    safetySnapshot: safety ? snapshotInfo(catalog, catalog.snapshot(safety.id)) : null,
    members: pairs.map((p) => ({
      role: p.role,
      container: catalog.container(p.target.id).name,
      source: `${snapshotInfo(catalog, p.source).container}@${p.source.name}`,
    })),
    identity,
    generation: final.generation,
  };
}

export function sourceContainersOf(core: EngineCore, source: SnapshotRecord): SourceContainer[] {
  const { catalog } = core;
  const of = (role: string | null, s: SnapshotRecord): SourceContainer => {
    const record = catalog.containers.get(s.container);
    return { role, name: record?.name ?? s.containerName, uuid: record?.uuid ?? null };
  };
  return [
    of(null, source),
    ...Object.entries(source.members).map(([role, id]) => of(role, catalog.snapshot(id))),
  ];
}

/** Pairs a VM's members with the snapshot's member snapshots by role, creating missing target members. */
function pairMembers(
  core: EngineCore,
  target: ContainerRecord,
  source: SnapshotRecord,
  roles?: string[],
): Pair[] {
  if (target.type !== 'vm') return [{ role: null, target, source, created: false }];
  const { catalog, batch, tables } = core;
  const wanted = roles ?? Object.keys(source.members);
  const pairs: Pair[] = [];
  let vm = target;
  for (const role of wanted) {
    const snapshotId = source.members[role];
    if (snapshotId === undefined) {
      throw INVALID_ARGUMENT(`snapshot ${source.name} has no member "${role}"`, {
        argument: 'members',
        available: Object.keys(source.members),
      });
    }
    const memberSnapshot = catalog.snapshot(snapshotId);
    let memberId = vm.members[role];
    const created = memberId === undefined;
    if (memberId === undefined) {
      // The target lacks this role: give it a member of the snapshot's type, named after the VM.
      const name = `${vm.name}-${role}`;
      if (catalog.containerIds.has(name)) {
        // Never taken over: it may be a disk someone keeps. Say why the name is wanted and the ways out.
        throw new SnapsyncError(
          'ALREADY_EXISTS',
          `${vm.name} has no member "${role}" and ${source.containerName}@${source.name} has one: ` +
            `the sync would create ${name} for it, ` +
            `but a container of that name exists and is left alone. Delete or rename it, add it to ${vm.name} ` +
            `as "${role}" (add-member; its data is then replaced by the sync), or sync the other roles only (--member)`,
          { kind: 'container', name, role },
        );
      }
      const id = catalog.nextId(batch, 'container');
      const record: ContainerRecord = {
        v: 1,
        id,
        uuid: randomUUID(),
        name,
        type: memberSnapshot.containerType,
        size: 0,
        labels: {},
        members: {},
        memberOf: { vm: vm.id, role },
        file: memberSnapshot.containerType === 'file' ? { mode: 0o644, uid: 0, gid: 0 } : null,
        table: tables.create(batch, catalog.nextId(batch, 'table'), null, { kind: 'container', id }).id,
        createdAt: new Date().toISOString(),
        generation: 0,
        createdBySync: true,
      };
      catalog.putContainer(batch, record);
      vm = { ...vm, members: { ...vm.members, [role]: id } };
      catalog.putContainer(batch, vm);
      memberId = id;
    }
    const member = catalog.container(memberId);
    if (member.type !== memberSnapshot.containerType) {
      throw TYPE_MISMATCH(
        `member ${role} of "${vm.name}" is a ${member.type}, the snapshot's is a ${memberSnapshot.containerType}`,
        {
          role,
        },
      );
    }
    pairs.push({ role, target: member, source: memberSnapshot, created });
  }
  return pairs;
}

/**
 * The target's identity written back copy-on-write: the one step of a sync that needs free blocks, so on a
 * full pool the refusal says so (the sync is rolled back whole; snapshots, reverts and deletes still work).
 */
function restoreIdentity<Captured, Report>(
  hooks: { restore(context: SyncContext, captured: Captured): Report },
  context: SyncContext,
  captured: Captured,
): Report {
  try {
    return hooks.restore(context, captured);
  } catch (err) {
    if (!(err instanceof SnapsyncError) || err.code !== 'OUT_OF_SPACE' || err.details.host) throw err;
    throw new SnapsyncError(
      'OUT_OF_SPACE',
      `sync refused: restoring the target's identity writes its blocks copy-on-write, and ${err.message}`,
      err.details,
      err,
    );
  }
}
