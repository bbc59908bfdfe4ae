/**
 * What the engine must know about data I/O running on the threadpool
 * (block-io-async.ts), so that the synchronous engine around it stays exact.
 *
 * - Every async request (read, write, trim/zero) holds a block range of its
 *   container while it runs. A write waits for earlier overlapping writes and
 *   trims (their copy-up, allocation and map entry never interleave); a trim
 *   also waits for earlier overlapping reads, so a block it frees is never
 *   still being read when it is handed out again. Reads wait for nothing.
 * - `quiesce()` resolves at a moment when no async request is in flight and
 *   keeps new ones from starting until the caller's synchronous continuation
 *   ran: metadata operations (snapshot, sync, revert, delete, …) and the
 *   synchronous writes of the WebSocket API call it first, so they never see
 *   a half-done write, nothing they free is still being read, and every write
 *   acknowledged before them is in what they freeze.
 * - A synchronous request (a small write done on the event loop,
 *   block-io-async.ts) holds no range: it runs only when `mayRunNow` says
 *   nothing it would wait for is held and no gate is up.
 * - `unwritten` holds the blocks of writes whose data is not on the device yet:
 *   a commit meanwhile records them as free (core.ts), so a crash leaks none.
 * Cost: O(ranges held) per request (the queue depth of the clients), O(1) otherwise.
 */

import type { Run } from './space-map';

export type RangeUse = 'read' | 'write' | 'trim';

interface RangeLock {
  readonly container: number;
  readonly first: number;
  readonly last: number;
  readonly use: RangeUse;
  readonly done: Promise<void>;
}

/** What an async request of `use` waits for: a held range of one of these uses. */
const WAITS_FOR: Record<RangeUse, ReadonlySet<RangeUse>> = {
  read: new Set(),
  write: new Set(['write', 'trim']),
  trim: new Set(['read', 'write', 'trim']),
};

export class IoTracker {
  private readonly ranges = new Set<RangeLock>();
  /** Blocks allocated by writes whose data is not written yet (no map entry points at them). */
  readonly unwritten = new Set<Run[]>();
  private drained: Array<() => void> = [];
  /** While set, new requests wait for it. */
  private gate: Promise<void> | null = null;

  /** Async requests holding a range now. */
  get active(): number {
    return this.ranges.size;
  }

  /**
   * Starts an async request on blocks [first, last] of `container`: waits for
   * the gate and for the earlier overlapping ranges it must follow; returns
   * the release (call it exactly once, when the request is done).
   */
  async begin(container: number, first: number, last: number, use: RangeUse): Promise<() => void> {
    while (this.gate) await this.gate;
    const waits = WAITS_FOR[use];
    const earlier: Promise<void>[] = [];
    if (waits.size > 0) {
      for (const l of this.ranges)
        if (l.container === container && l.first <= last && first <= l.last && waits.has(l.use))
          earlier.push(l.done);
    }
    let unlock!: () => void;
    const lock: RangeLock = { container, first, last, use, done: new Promise<void>((r) => (unlock = r)) };
    this.ranges.add(lock);
    const release = () => {
      if (!this.ranges.delete(lock)) return;
      unlock();
      if (this.ranges.size === 0) for (const resolve of this.drained.splice(0)) resolve();
    };
    if (earlier.length > 0) await Promise.all(earlier);
    return release;
  }

  /**
   * Whether a request of `use` on blocks [first, last] of `container` could
   * run to its end right now, holding nothing (a synchronous one: nothing
   * else runs meanwhile): no gate is up and no held range is one `begin`
   * would wait for. O(ranges held).
   */
  mayRunNow(container: number, first: number, last: number, use: RangeUse): boolean {
    if (this.gate) return false;
    const waits = WAITS_FOR[use];
    if (waits.size === 0) return true;
    for (const l of this.ranges)
      if (l.container === container && l.first <= last && first <= l.last && waits.has(l.use)) return false;
    return true;
  }

  /**
   * Resolves when no async request is in flight, holding new ones back until
   * the caller's synchronous continuation has run (they start on the next macrotask).
   */
  async quiesce(): Promise<void> {
    while (this.gate) await this.gate;
    let open!: () => void;
    this.gate = new Promise<void>((r) => (open = r));
    if (this.ranges.size > 0) await new Promise<void>((r) => this.drained.push(r));
    setImmediate(() => {
      this.gate = null;
      open();
    });
  }
}
