/**
 * Space map: which physical blocks are free.
 *
 * Free space is the free-extent records plus everything from the high-water
 * mark (hwm, the next never-used block) to capacity. Allocations change the
 * in-memory map at once and reach the store with the next commit (`dirtyOps`);
 * releases are only *planned* against a commit and applied after it succeeded,
 * so a freed block is never handed out before the commit that freed it.
 * Cost: allocate/release O(log n + k) for n free extents and k runs touched.
 */
import { OUT_OF_SPACE } from './errors';
import { DB, META_HWM } from './store/keys';
import type { StoreOp } from './store/metadata-store';

export interface Run {
  start: number;
  count: number;
}

export class SpaceMap {
  /** Sorted starts of free extents. */
  private starts: number[] = [];
  private lengths = new Map<number, number>();
  private byEnd = new Map<number, number>();
  private dirty = new Set<number>();
  private hwmDirty = false;
  private freeInExtents = 0;

  constructor(
    public hwm: number,
    private _capacity: number,
    extents: Iterable<Run>,
  ) {
    for (const { start, count } of extents) this.insert(start, count, false);
  }

  /** The highest block that may be handed out (blocks are 1..capacity). */
  get capacity(): number {
    return this._capacity;
  }

  /** A grown pool (grow.ts): blocks up to `capacity` may be handed out from now on; never below the hwm's. */
  setCapacity(capacity: number): void {
    if (capacity + 1 < this.hwm)
      throw new Error(`capacity ${capacity} is below the high-water mark ${this.hwm}`);
    this._capacity = capacity;
  }

  get freeBlocks(): number {
    return this.freeInExtents + (this.capacity + 1 - this.hwm);
  }

  get usedBlocks(): number {
    return this.capacity - this.freeBlocks;
  }

  /** Allocates `count` blocks, as few runs as possible, lowest addresses first. Throws OUT_OF_SPACE. */
  allocate(count: number): Run[] {
    if (count > this.freeBlocks) throw OUT_OF_SPACE(count, this.freeBlocks);
    const runs: Run[] = [];
    let left = count;
    // First fit: one extent that holds it all keeps the run contiguous.
    const fit = this.starts.find((s) => (this.lengths.get(s) ?? 0) >= left);
    if (fit !== undefined) {
      runs.push(this.take(fit, left));
      return runs;
    }
    const tail = this.capacity + 1 - this.hwm;
    if (tail >= left) {
      runs.push({ start: this.hwm, count: left });
      this.hwm += left;
      this.hwmDirty = true;
      return runs;
    }
    while (left > 0 && this.starts.length > 0) {
      const s = this.starts[0]!;
      const run = this.take(s, Math.min(left, this.lengths.get(s)!));
      runs.push(run);
      left -= run.count;
    }
    if (left > 0) {
      runs.push({ start: this.hwm, count: left });
      this.hwm += left;
      this.hwmDirty = true;
    }
    return runs;
  }

  /** Returns blocks that were allocated but never committed (an aborted batch). */
  giveBack(runs: Run[]): void {
    for (const run of runs) this.insert(run.start, run.count, true);
  }

  /**
   * Takes back runs that `giveBack` returned (each lies within one free
   * extent now): a commit records blocks of writes still in flight as free
   * and takes them again after (core.ts), so a crash never leaks them.
   */
  retake(runs: Run[]): void {
    for (const run of runs) {
      const s = this.starts[lowerBound(this.starts, run.start + 1) - 1]!;
      const length = this.lengths.get(s)!;
      this.remove(s);
      if (run.start > s) this.add(s, run.start - s);
      const end = run.start + run.count;
      if (end < s + length) this.add(end, s + length - end);
    }
  }

  /** Store ops for everything allocated or given back since the last commit. */
  dirtyOps(): StoreOp[] {
    const ops: StoreOp[] = [];
    for (const start of this.dirty) ops.push({ db: DB.free, key: start, value: this.lengths.get(start) });
    if (this.hwmDirty) ops.push({ db: DB.meta, key: META_HWM, value: this.hwm });
    return ops;
  }

  /** The store wrote dirtyOps(): forget them. */
  committed(): void {
    this.dirty.clear();
    this.hwmDirty = false;
  }

  /** The part of `run` inside 1..hwm-1 (what the allocator ever handed out). */
  private handedOut(run: Run): Run[] {
    const start = Math.max(1, run.start);
    const end = Math.min(this.hwm, run.start + run.count);
    return end > start ? [{ start, count: end - start }] : [];
  }

  /**
   * Plans freeing `runs` in the coming commit: returns the store ops that
   * record it and `apply`, to call only once that commit succeeded.
   */
  planRelease(runs: Run[]): { ops: StoreOp[]; apply: () => void } {
    if (runs.length === 0) return { ops: [], apply: () => {} };
    // A block never handed out (a damaged map record's: damaged-pointer.ts) is never made free: the
    // allocator would hand it out past the pool's end. fsck names the record.
    const merged = mergeRuns(runs.flatMap((r) => this.handedOut(r)));
    // Merge against an overlay of the extents as they will be, so two runs that
    // both touch one existing extent produce one record, not two overlapping ones.
    const lengths = new Map<number, number | undefined>();
    const byEnd = new Map<number, number | undefined>();
    const lengthAt = (start: number) => (lengths.has(start) ? lengths.get(start) : this.lengths.get(start));
    const startEndingAt = (end: number) => (byEnd.has(end) ? byEnd.get(end) : this.byEnd.get(end));
    const drop = (start: number) => {
      const count = lengthAt(start)!;
      lengths.set(start, undefined);
      byEnd.set(start + count, undefined);
    };
    for (const run of merged) {
      let start = run.start;
      let count = run.count;
      const leftStart = startEndingAt(start);
      if (leftStart !== undefined) {
        drop(leftStart);
        count += start - leftStart;
        start = leftStart;
      }
      const rightLength = lengthAt(run.start + run.count);
      if (rightLength !== undefined) {
        drop(run.start + run.count);
        count += rightLength;
      }
      lengths.set(start, count);
      byEnd.set(start + count, start);
    }
    const ops: StoreOp[] = [...lengths].map(([start, count]) => ({ db: DB.free, key: start, value: count }));
    return {
      ops,
      apply: () => {
        for (const run of merged) this.insert(run.start, run.count, false);
      },
    };
  }

  /** All free extents (for fsck and usage). */
  extents(): Run[] {
    return this.starts.map((start) => ({ start, count: this.lengths.get(start)! }));
  }

  /**
   * The highest block handed out (below the hwm, in no free extent) of
   * those that are `first` plus a multiple of `stride` (one data file's
   * blocks), or 0. O(free extents above it).
   */
  highestAllocated(first: number, stride: number): number {
    const below = (b: number) => (b < first ? 0 : b - ((b - first) % stride));
    let b = below(this.hwm - 1);
    let i = this.starts.length - 1;
    while (b > 0) {
      while (i >= 0 && this.starts[i]! > b) i--;
      if (i < 0 || b >= this.starts[i]! + this.lengths.get(this.starts[i]!)!) return b;
      b = below(this.starts[i]! - 1);
    }
    return 0;
  }

  private take(start: number, count: number): Run {
    const length = this.lengths.get(start)!;
    this.remove(start);
    if (length > count) this.add(start + count, length - count);
    return { start, count };
  }

  /** Inserts a free run, merging with its neighbours. */
  private insert(start: number, count: number, markDirty: boolean): void {
    let s = start;
    let c = count;
    const leftStart = this.byEnd.get(s);
    if (leftStart !== undefined) {
      c += s - leftStart;
      s = leftStart;
      this.remove(leftStart);
    }
    const rightLength = this.lengths.get(start + count);
    if (rightLength !== undefined) {
      this.remove(start + count);
      c += rightLength;
    }
    this.add(s, c);
    if (!markDirty) {
      // Inserted as already-committed state: its key and its merged neighbours are clean.
      this.dirty.delete(s);
      this.dirty.delete(start + count);
      if (leftStart !== undefined) this.dirty.delete(leftStart);
    }
  }

  private add(start: number, count: number): void {
    this.lengths.set(start, count);
    this.byEnd.set(start + count, start);
    this.starts.splice(lowerBound(this.starts, start), 0, start);
    this.freeInExtents += count;
    this.dirty.add(start);
  }

  private remove(start: number): void {
    const count = this.lengths.get(start)!;
    this.lengths.delete(start);
    this.byEnd.delete(start + count);
    this.starts.splice(lowerBound(this.starts, start), 1);
    this.freeInExtents -= count;
    this.dirty.add(start);
  }
}

function lowerBound(sorted: number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Sorts and coalesces runs that touch. */
export function mergeRuns(runs: Run[]): Run[] {
  const sorted = [...runs].sort((a, b) => a.start - b.start);
  const out: Run[] = [];
  for (const run of sorted) {
    const last = out[out.length - 1];
    if (last && last.start + last.count === run.start) last.count += run.count;
    else out.push({ ...run });
  }
  return out;
}
