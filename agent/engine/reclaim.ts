/**
 * The reclaimer: frees the blocks of discarded ("garbage") tables, then those
 * of hidden snapshots no one can read (shadowed.ts), a bounded step at a
 * time, each step one commit, so discarding a table is O(1) for the
 * operation that does it (a sync of a 1 TiB disk does not wait for its old
 * table's blocks). Freed blocks become allocatable after the step's commit.
 */
import type { EngineCore } from './core';
import { pruneShadowedStep } from './shadowed';
import { DB, ZERO_BLOCK } from './store/keys';

const STEP_ENTRIES = 8192;

/** Does one step; returns true if more work is left. */
export function reclaimStep(core: EngineCore): boolean {
  const garbage = [...core.tables.tables.values()].find((t) => t.owner.kind === 'garbage');
  // Then what hidden snapshots hold that no one can read (shadowed.ts).
  if (garbage === undefined) return pruneShadowedStep(core);
  const { store, batch } = core;
  let n = 0;
  core.mutate(() => {
    for (const { block, physical } of core.tables.blocks.entries(garbage.id)) {
      if (physical !== ZERO_BLOCK) batch.released.push({ start: physical, count: 1 });
      batch.setMap(garbage.id, block, null);
      if (++n >= STEP_ENTRIES) break;
    }
    if (n < STEP_ENTRIES) {
      for (const { key } of store.entries<[number, number], Buffer>(DB.presence, {
        start: [garbage.id, 0],
        end: [garbage.id, Number.MAX_SAFE_INTEGER],
      })) {
        batch.remove(DB.presence, key);
      }
      batch.remove(DB.tables, garbage.id);
    }
  });
  if (n < STEP_ENTRIES) core.tables.forget(garbage.id);
  return true;
}

/** Runs the reclaimer to the end (close, tests, `pool.reclaim()`). Returns steps taken. */
export function reclaimAll(core: EngineCore): number {
  let steps = 0;
  while (reclaimStep(core)) steps++;
  return steps;
}
