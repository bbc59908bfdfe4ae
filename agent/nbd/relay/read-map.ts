/**
 * The block addresses a transmission thread reads by (worker.mts), in memory
 * shared with the event loop, which alone writes them.
 *
 * Layout: one 32-bit entry per export block (0: not known, ask; 1: reads as
 * zeros; p + 1: physical block p), and the epoch.
 *
 * Contract with the thread (a seqlock): it loads the epoch, then the
 * entries, reads the data file, and sends the bytes only if the epoch is
 * still the same. `reset` zeroes every entry it filled and then moves the
 * epoch, and the engine calls it before any freed block can be handed out
 * again (engine/mapping-events.ts): so bytes from a block that was freed and
 * reused are never sent, and an address dropped here is never used again. A
 * `remapped` entry (a write's copy-on-write, a trim) is only zeroed: its old
 * block is not free until the commit, which resets.
 * Cost: 4 bytes of address space per export block, touched only where read
 * (the pages of untouched entries are never allocated); `reset` is O(pages filled).
 */
import type { BlockLocation } from '../../engine/block-io';
import type { MappingListener } from '../../engine/mapping-events';

/** The entry of a block that reads as zeros. */
export const ZERO_ENTRY = 1;
/** Slot of the epoch in `ReadMap.epoch`. */
export const EPOCH_SLOT = 0;
/**
 * Blocks located at once (one page of entries): so a read's neighbours need
 * no round trip of their own, and a sequential reader finds the next group
 * located too (`fill` takes the group after the one asked for).
 */
const GROUP_SHIFT = 10;
/** Largest physical block an entry holds (p + 1 fits 32 bits). */
const MAX_PHYSICAL = 0xffff_fffe;
/** Exports with more blocks are served on the event loop (the map would reserve over 256 MiB of address space). */
export const MAX_MAPPED_BLOCKS = 64 * 1024 * 1024;

export type Locate = (first: number, count: number) => BlockLocation | null;

/**
 * One export's addresses (shared by every connection reading the same
 * thing, and kept a while after the last one closed: a client that
 * reconnects finds them located).
 */
export class ReadMap implements MappingListener {
  readonly entries: SharedArrayBuffer;
  /** [epoch] (EPOCH_SLOT). */
  readonly epoch = new SharedArrayBuffer(4);
  private readonly epochs = new Int32Array(this.epoch);
  private readonly map: Uint32Array;
  /** Groups of `map` holding addresses. */
  private readonly filled = new Set<number>();
  /** The table the entries were located through (its `remapped` events concern them). */
  private table = -1;

  constructor(readonly blocks: number) {
    if (blocks > MAX_MAPPED_BLOCKS) throw new RangeError(`${blocks} blocks: too many for a read map`);
    this.entries = new SharedArrayBuffer(Math.max(1, blocks) * 4);
    this.map = new Uint32Array(this.entries);
  }

  /** Locates the group of blocks around [first, first + count), and the group after it, and publishes their addresses. */
  fill(first: number, count: number, locate: Locate): void {
    const from = (first >>> GROUP_SHIFT) << GROUP_SHIFT;
    const to = Math.min(this.blocks, (((first + count - 1) >>> GROUP_SHIFT) + 2) << GROUP_SHIFT);
    if (first < 0 || count <= 0 || to <= from) return;
    const where = locate(from, to - from);
    if (where === null) return;
    if (where.table !== this.table) {
      // Another table now (a snapshot froze the old one): nothing located through the old one stays.
      if (this.table !== -1) this.reset();
      this.table = where.table;
    }
    for (let i = 0; i < where.blocks.length; i++) {
      const physical = where.blocks[i]!;
      // Past any block (IN_PIECES: read from several): left to ask for.
      if (physical > MAX_PHYSICAL) continue;
      Atomics.store(this.map, from + i, physical === 0 ? ZERO_ENTRY : physical + 1);
    }
    for (let g = from >>> GROUP_SHIFT; g <= (to - 1) >>> GROUP_SHIFT; g++) this.filled.add(g);
  }

  remapped(table: number, block: number): void {
    if (table === this.table && block < this.blocks) Atomics.store(this.map, block, 0);
  }

  reset(): void {
    for (const g of this.filled) this.map.fill(0, g << GROUP_SHIFT, (g + 1) << GROUP_SHIFT);
    this.filled.clear();
    // After the entries: a read that loaded an old address sees the epoch move.
    Atomics.add(this.epochs, EPOCH_SLOT, 1);
  }
}
