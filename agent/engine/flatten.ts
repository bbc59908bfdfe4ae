/**
 * Flatten: copy into a container's own table every block it reads through its
 * chain, then cut the parent pointer, so it depends on no snapshot.
 * Runs in steps (yielding between them) so the agent stays responsive; the
 * copy steps change nothing a reader sees, and the cut is one transaction.
 * Cost: O(blocks readable through the chain) reads and writes.
 */
import { readRange, writeRange } from './block-io';
import type { EngineCore } from './core';
import { INVALID_ARGUMENT } from './errors';
import { releaseChain } from './snapshots';
import { ZERO_BLOCK } from './store/keys';
import type { ContainerRecord } from './store/records';
import type { TableState } from './table-state';

const STEP_BLOCKS = 256;

export type Progress = (done: number, total: number) => void;

export async function flattenContainer(
  core: EngineCore,
  container: ContainerRecord,
  onProgress?: Progress,
): Promise<void> {
  const members =
    container.type === 'vm'
      ? Object.values(container.members).map((id) => core.catalog.container(id))
      : [container];
  const work = members.map((m) => ({ member: m, blocks: blocksToCopy(core, m) }));
  const total = work.reduce((n, w) => n + w.blocks.length, 0);
  let done = 0;
  onProgress?.(0, total);
  for (const { member, blocks } of work) {
    const tableId = member.table!;
    for (let i = 0; i < blocks.length; ) {
      core.assertOpen();
      const current = core.catalog.containers.get(member.id);
      if (current?.table !== tableId) {
        throw INVALID_ARGUMENT(`"${member.name}" was synced, reverted or deleted during flatten`, {
          container: member.name,
        });
      }
      const table = core.tables.get(tableId);
      const stepEnd = Math.min(blocks.length, i + STEP_BLOCKS);
      while (i < stepEnd) {
        // A run of consecutive blocks the table still does not own whole (writes may have landed meanwhile).
        let j = i;
        while (j < stepEnd && blocks[j] === blocks[i]! + (j - i) && readsThrough(core, table, blocks[j]!))
          j++;
        if (j === i) {
          i++;
          continue;
        }
        const offset = blocks[i]! * core.blockSize;
        const length = Math.min((j - i) * core.blockSize, current.size - offset);
        writeRange(core, table, offset, readRange(core, table, offset, length));
        i = j;
      }
      core.afterWrite();
      done = Math.min(total, done + STEP_BLOCKS);
      onProgress?.(done, total);
      await new Promise((resolve) => setImmediate(resolve));
    }
    // No write planned against the chain may finish after the cut: it would leave sub-blocks reading nothing.
    await core.io.quiesce();
    core.assertOpen();
    completeSubBlocks(core, core.tables.get(core.catalog.container(member.id).table!));
    core.mutate(() => {
      const table = core.tables.get(core.catalog.container(member.id).table!);
      const parent = table.parent;
      if (parent === null) return;
      // Explicit zeros only hid the parent's data; without a parent they are just holes.
      for (const block of [...table.presence.blocksIn(0, Number.MAX_SAFE_INTEGER)]) {
        if (core.tables.physical(core.batch, table.id, block) === ZERO_BLOCK)
          core.tables.unmap(core.batch, table, block);
      }
      core.tables.setParent(core.batch, table, null);
      releaseChain(core, parent);
    });
  }
  onProgress?.(total, total);
}

/** Blocks in the container's range that it reads (in part) from its chain, not from its own table. */
function blocksToCopy(core: EngineCore, container: ContainerRecord): number[] {
  const table: TableState = core.tables.get(container.table!);
  const blocks: number[] = [];
  if (table.parent === null) return blocks;
  const count = Math.ceil(container.size / core.blockSize);
  for (let b = 0; b < count; b++) {
    if (table.presence.has(b)) {
      if (readsThrough(core, table, b)) blocks.push(b); // it owns only some sub-blocks (sub-block.ts)
      continue;
    }
    const owner = core.tables.ownerOf(table.parent, b);
    if (owner !== 0 && core.tables.physical(core.batch, owner, b) !== ZERO_BLOCK) blocks.push(b);
  }
  return blocks;
}

/** Whether the table reads any of `block` through its chain: it does not own it, or owns only some sub-blocks. */
function readsThrough(core: EngineCore, table: TableState, block: number): boolean {
  return !table.presence.has(block) || core.tables.mask(core.batch, table.id, block) !== 0;
}

/** Writes whole every block the table owns only some sub-blocks of, with what it reads there now. */
function completeSubBlocks(core: EngineCore, table: TableState): void {
  const bs = core.blockSize;
  for (const block of [...core.tables.partlyOwned(core.batch, table)])
    writeRange(core, table, block * bs, readRange(core, table, block * bs, bs));
}
