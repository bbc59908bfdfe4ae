/**
 * Freeing what a hidden snapshot holds that no one can read any more.
 *
 * A deleted snapshot that other tables still read through stays, hidden
 * (snapshots.ts). In the nightly refresh (snapshot production, sync staging
 * to it, delete yesterday's nightly) each deleted nightly has one dependent,
 * the next nightly, which maps again every block production rewrote that
 * day: those blocks of the hidden one are read by no one, yet they were kept
 * while production lived, so the pool grew by a day's changes every night.
 *
 * Here a hidden snapshot table H that no reader pins and whose only
 * dependent is C gives up each entry C maps too (its block is freed): whole,
 * or at least every sub-block H's entry owns (sub-block.ts: an entry of C's
 * that owns only some sub-blocks reads the others through H, which must keep
 * its entry while it owns one of those); once H
 * holds nothing it is taken out of the chain (C's parent becomes H's) and
 * goes, with its hidden snapshot record. C is a snapshot (the nightly
 * refresh) or a container's current table (a container's own snapshot,
 * deleted after the container rewrote it: its blocks stayed, hidden, until
 * another snapshot of the container froze C).
 *
 * Contract: what every table reads is unchanged (C maps each block taken out
 * of H, and no one else reads through H). Each step is one transaction (at
 * most STEP_ENTRIES entries taken out, STEP_CHUNKS presence chunks looked at),
 * so a crash leaves H partly pruned, every state consistent; H's entry count
 * follows (fsck). Every write C acknowledged is committed before the step
 * (`mutate`), so a block is taken out of H only once C's entry for it is
 * durable. A current C is pruned against only while no async request is in
 * flight: one planned before C mapped a block may still be reading H's copy.
 * A frozen C never changes, so each (H, C) pair is gone through once; a
 * current C again once it maps more blocks than at the end of the last pass.
 * Cost: O(H's presence chunks) in memory, one map lookup per entry taken out.
 */
import type { EngineCore } from './core';
import { CHUNK_BLOCKS } from './presence';
import { ZERO_BLOCK } from './store/keys';
import { fullMask } from './sub-block';
import type { TableState } from './table-state';

const STEP_ENTRIES = 8192;
const STEP_CHUNKS = 64;

/** Per hidden table (TableRegistry.pruneProgress): against which dependent, the next chunk, and once done, what that dependent mapped. */
export interface PruneProgress {
  child: number;
  nextChunk: number;
  done: boolean;
  /** The dependent's mapped blocks when the pass ended (a current one that maps more is gone through again). */
  childMapped: number;
}

/** Does one step on one hidden table; false when none has anything to free. */
export function pruneShadowedStep(core: EngineCore): boolean {
  const { tables, catalog } = core;
  // An import's undo point must stay whole while its import may still be undone (import-in-place.ts).
  const undoPoints = new Set<number>();
  for (const c of catalog.containers.values()) if (c.importUndo != null) undoPoints.add(c.importUndo);
  for (const hidden of tables.tables.values()) {
    if (!hidden.frozen || hidden.owner.kind !== 'snapshot' || hidden.dependents !== 1 || hidden.readers > 0)
      continue;
    if (catalog.snapshots.get(hidden.owner.id)?.hidden !== true || undoPoints.has(hidden.owner.id)) continue;
    const child = tables.onlyChild(hidden);
    if (child === undefined || (!child.frozen && core.io.active > 0)) continue;
    let at = tables.pruneProgress.get(hidden.id);
    const grown = at?.done === true && !child.frozen && child.presence.count > at.childMapped;
    if (at === undefined || at.child !== child.id || grown) {
      at = { child: child.id, nextChunk: 0, done: false, childMapped: 0 };
      tables.pruneProgress.set(hidden.id, at);
    }
    if (at.done) continue;
    step(core, hidden, child, at);
    return true;
  }
  return false;
}

function step(core: EngineCore, hidden: TableState, child: TableState, at: PruneProgress): void {
  const { tables, batch, catalog } = core;
  const chunks = [...hidden.presence.chunks.keys()].filter((c) => c >= at.nextChunk).sort((a, b) => a - b);
  let nextChunk = at.nextChunk;
  let emptied = false;
  core.mutate(() => {
    let taken = 0;
    let looked = 0;
    for (const chunk of chunks) {
      if (taken >= STEP_ENTRIES || looked >= STEP_CHUNKS) break;
      looked++;
      nextChunk = chunk + 1;
      for (const block of [...hidden.presence.blocksIn(chunk * CHUNK_BLOCKS, (chunk + 1) * CHUNK_BLOCKS)]) {
        if (!child.presence.has(block) || readsThrough(core, hidden, child, block)) continue;
        const physical = tables.physical(batch, hidden.id, block);
        if (physical !== ZERO_BLOCK) batch.released.push({ start: physical, count: 1 });
        tables.dropShadowed(batch, hidden, block);
        taken++;
      }
    }
    if (hidden.presence.count > 0) return;
    // Nothing left in it: out of the chain, then gone (the reclaimer frees an empty table at once).
    const snapshot = hidden.owner.kind === 'snapshot' ? catalog.snapshots.get(hidden.owner.id) : undefined;
    tables.setParent(batch, child, hidden.parent);
    if (snapshot) catalog.removeSnapshot(batch, snapshot);
    tables.discard(batch, hidden);
    emptied = true;
  });
  // Only once committed: a step that failed is tried again.
  at.nextChunk = nextChunk;
  at.done = emptied || nextChunk > (chunks[chunks.length - 1] ?? -1);
  if (at.done) at.childMapped = child.presence.count;
}

/**
 * Whether `child`'s entry for `block` still reads something of `hidden`'s:
 * a sub-block it does not own that `hidden`'s entry owns (all of them for a
 * whole entry or explicit zeros). Without one, `hidden`'s entry gives the
 * child nothing the chain below `hidden` would not.
 */
function readsThrough(core: EngineCore, hidden: TableState, child: TableState, block: number): boolean {
  const { tables, batch } = core;
  const childMask = tables.mask(batch, child.id, block);
  if (childMask === 0) return false;
  const hiddenMask = tables.mask(batch, hidden.id, block);
  return ((hiddenMask === 0 ? fullMask(core.blockSize) : hiddenMask) & ~childMask) !== 0;
}
