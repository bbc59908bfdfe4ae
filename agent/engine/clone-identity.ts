/**
 * A clone's own identity. A clone starts as the snapshot's exact copy: a VM
 * cloned from production would carry production's MACs, BIOS UUID and disk
 * GUIDs and point at production's disks and networks. So the identity hooks
 * run on it as for a sync into a target that has no identity of its own:
 * identifiers are made fresh (seeded by the clone's UUID), references to the
 * source's members are rewired to the clone's members of the same role, and
 * a reference nothing maps refuses the clone (all or nothing: the hooks throw
 * inside the clone's transaction, so nothing is created).
 * Cost: the hooks read each member's identity (a config file, a disk's first
 * and last sectors) and write only what they change.
 */
import type { EngineCore } from './core';
import { containerInfo, snapshotInfo } from './infos';
import type { ContainerRecord, SnapshotRecord } from './store/records';
import { type SyncContext, type SyncHooks, sourceContainersOf } from './sync';
import { EngineContainerView } from './view';

export function giveCloneIdentity<Report>(
  core: EngineCore,
  clone: ContainerRecord,
  source: SnapshotRecord,
  hooks: SyncHooks<unknown, Report>,
): Report {
  const { catalog, tables } = core;
  const pairs: Array<[string | null, ContainerRecord, SnapshotRecord]> =
    clone.type === 'vm'
      ? Object.entries(source.members).map(([role, id]) => [
          role,
          catalog.container(clone.members[role]!),
          catalog.snapshot(id),
        ])
      : [[null, clone, source]];
  const context: SyncContext = {
    operation: 'clone',
    target: containerInfo(catalog, tables, clone),
    source: snapshotInfo(catalog, source),
    members: pairs.map(([role, member, snapshot]) => ({
      role,
      target: containerInfo(catalog, tables, member),
      source: snapshotInfo(catalog, snapshot),
      view: new EngineContainerView(core, member.id),
    })),
    sourceContainers: sourceContainersOf(core, source),
  };
  // The clone has no identity of its own to keep: captured from no member at all.
  const captured = hooks.capture({ ...context, members: [] });
  return hooks.restore(context, captured);
}
