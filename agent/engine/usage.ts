/** Space accounting per container: logical, mapped, exclusive (what deleting frees), shared. */
import type { EngineCore } from './core';
import { ZERO_BLOCK } from './store/keys';
import type { ContainerRecord } from './store/records';
import type { TableState } from './table-state';
import type { Usage } from './types';

export function containerUsage(core: EngineCore, container: ContainerRecord): Usage {
  const { catalog, tables, blockSize } = core;
  const members =
    container.type === 'vm'
      ? Object.values(container.members).map((id) => catalog.container(id))
      : [container];
  const freed = tablesFreedByDeleting(core, container);
  let mapped = 0;
  let shared = 0;
  let logical = 0;
  for (const member of members) {
    logical += member.size;
    const table = tables.get(member.table!);
    const count = Math.ceil(member.size / blockSize);
    for (let b = 0; b < count; b++) {
      const owner = tables.ownerOf(table, b);
      if (owner === 0 || tables.physical(core.batch, owner, b) === ZERO_BLOCK) continue;
      mapped++;
      if (!freed.has(owner)) shared++;
    }
  }
  let exclusive = 0;
  for (const id of freed) exclusive += physicalBlocks(core, tables.get(id));
  return {
    container: container.name,
    logicalBytes: logical,
    mappedBytes: mapped * blockSize,
    exclusiveBytes: exclusive * blockSize,
    sharedBytes: shared * blockSize,
  };
}

/** Tables that a recursive delete of the container would free (simulated, nothing changes). */
function tablesFreedByDeleting(core: EngineCore, container: ContainerRecord): Set<number> {
  const { catalog, tables } = core;
  const ids = [container.id, ...Object.values(container.members)];
  const dependents = new Map<number, number>();
  const deps = (t: TableState) => dependents.get(t.id) ?? t.dependents;
  const freed = new Set<number>();
  const release = (start: TableState | null, doomedSnapshots: Set<number>) => {
    for (let t = start; t !== null; t = t.parent) {
      if (freed.has(t.id)) return;
      if (t !== start) dependents.set(t.id, deps(t) - 1);
      const ownedSnapshot = t.owner.kind === 'snapshot' ? catalog.snapshots.get(t.owner.id) : undefined;
      const goes =
        t.owner.kind === 'container' ||
        (ownedSnapshot && (ownedSnapshot.hidden || doomedSnapshots.has(ownedSnapshot.id)));
      // A table an NBD reader pins stays (hidden) until the reader goes.
      if (!goes || deps(t) > 0 || t.readers > 0) return;
      freed.add(t.id);
    }
  };
  const doomed = new Set<number>();
  for (const s of catalog.snapshots.values()) if (ids.includes(s.container)) doomed.add(s.id);
  for (const id of ids) {
    const c = catalog.container(id);
    if (c.table !== null) release(tables.get(c.table), doomed);
  }
  // Snapshots nobody reads through also go.
  for (const id of doomed) {
    const s = catalog.snapshot(id);
    if (s.table !== null && !freed.has(s.table)) release(tables.get(s.table), doomed);
  }
  return freed;
}

function physicalBlocks(core: EngineCore, table: TableState): number {
  let n = 0;
  for (const { physical } of core.tables.blocks.entries(table.id)) {
    if (physical !== ZERO_BLOCK) n++;
  }
  // Staged (uncommitted) entries of a current table.
  for (const [block, physical] of core.batch.mapOps.get(table.id) ?? []) {
    const committed = core.tables.blocks.get(table.id, block);
    const before = committed !== undefined && committed !== ZERO_BLOCK ? 1 : 0;
    const after = physical !== null && physical !== ZERO_BLOCK ? 1 : 0;
    n += after - before;
  }
  return n;
}
