/**
 * The block addresses a transmission thread reads by (worker.mts), in memory
 * shared with the event loop, which alone writes them.
 *
 * Layout: one 32-bit entry per export block (0: not known, ask; 1: reads as
 * zeros; p + 1: physical block p), and a control array (`CONTROL`): the
 * epoch, and whether the session stopped.
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

/** Slots of the control array: the epoch; the session stopped; the thread closed the socket (set just before). */
export const CONTROL = { EPOCH: 0, STOPPED: 1, SOCKET_CLOSED: 2 } as const;
const CONTROL_SLOTS = 3;
/** The entry of a block that reads as zeros. */
export const ZERO_ENTRY = 1;
/** Blocks located at once: an aligned group, so neighbours of a read need no round trip of their own. */
const FILL_GROUP = 64;
const PAGE_SHIFT = 10;
/** Largest physical block an entry holds (p + 1 fits 32 bits). */
const MAX_PHYSICAL = 0xffff_fffe;
/** Exports with more blocks are served on the event loop (the map would reserve over 256 MiB of address space). */
export const MAX_MAPPED_BLOCKS = 64 * 1024 * 1024;

export class ReadMap implements MappingListener {
  readonly control = new SharedArrayBuffer(CONTROL_SLOTS * 4);
  /** Reads the thread answered itself, and their bytes (it adds to them). */
  readonly answered = new SharedArrayBuffer(16);
  readonly entries: SharedArrayBuffer;
  private readonly ctl = new Int32Array(this.control);
  private readonly map: Uint32Array;
  /** Pages of `map` (1024 entries) holding addresses. */
  private readonly filled = new Set<number>();
  /** The table the entries were located through (its `remapped` events concern them). */
  private table = -1;

  constructor(
    readonly blocks: number,
    private readonly locate: (first: number, count: number) => BlockLocation | null,
  ) {
    if (blocks > MAX_MAPPED_BLOCKS) throw new RangeError(`${blocks} blocks: too many for a read map`);
    this.entries = new SharedArrayBuffer(Math.max(1, blocks) * 4);
    this.map = new Uint32Array(this.entries);
  }

  /** Locates the group(s) of blocks around [first, first + count) and publishes their addresses. */
  fill(first: number, count: number): void {
    if (Atomics.load(this.ctl, CONTROL.STOPPED) !== 0) return;
    const from = Math.max(0, Math.floor(first / FILL_GROUP) * FILL_GROUP);
    const to = Math.min(this.blocks, Math.ceil((first + count) / FILL_GROUP) * FILL_GROUP);
    if (to <= from) return;
    const where = this.locate(from, to - from);
    if (where === null) return;
    if (where.table !== this.table) {
      // Another table now (a snapshot froze the old one): nothing located through the old one stays.
      if (this.table !== -1) this.reset();
      this.table = where.table;
    }
    for (let i = 0; i < where.blocks.length; i++) {
      const physical = where.blocks[i]!;
      if (physical > MAX_PHYSICAL) continue;
      Atomics.store(this.map, from + i, physical === 0 ? ZERO_ENTRY : physical + 1);
    }
    for (let page = from >>> PAGE_SHIFT; page <= (to - 1) >>> PAGE_SHIFT; page++) this.filled.add(page);
  }

  remapped(table: number, block: number): void {
    if (table === this.table && block < this.blocks) Atomics.store(this.map, block, 0);
  }

  reset(): void {
    for (const page of this.filled) this.map.fill(0, page << PAGE_SHIFT, (page + 1) << PAGE_SHIFT);
    this.filled.clear();
    // After the entries: a read that loaded an old address sees the epoch move.
    Atomics.add(this.ctl, CONTROL.EPOCH, 1);
  }

  /** Reads the thread answered itself so far. */
  get reads(): number {
    return Number(Atomics.load(new BigInt64Array(this.answered), 0));
  }

  /** Whether the thread has closed (or is closing) the connection's socket. */
  get socketClosed(): boolean {
    return Atomics.load(this.ctl, CONTROL.SOCKET_CLOSED) !== 0;
  }

  /** No more reads on the thread's own: the session ended. */
  stop(): void {
    Atomics.store(this.ctl, CONTROL.STOPPED, 1);
    this.reset();
  }
}
