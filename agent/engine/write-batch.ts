/**
 * The write batch (transaction manager layer): every change to metadata is
 * staged here and touches the store only when the pool commits the batch.
 *
 * - Record ops (containers, snapshots, tables, …) are kept last-write-wins.
 * - Map entries are kept per table so reads can see uncommitted writes.
 * - Presence chunks are only marked dirty; the commit writes their current bits.
 * - `released` blocks return to free space only after the commit is durable.
 * - In a transactional batch every in-memory change registers its undo, so an
 *   operation that fails half-way leaves memory exactly as the store has it.
 */
import type { Key } from 'lmdb';
import type { Run } from './space-map';
import type { DbName } from './store/keys';
import type { StoreOp } from './store/metadata-store';

export class WriteBatch {
  private readonly records = new Map<string, StoreOp>();
  /** table → logical block → physical block, or null to remove the entry. */
  readonly mapOps = new Map<number, Map<number, number | null>>();
  /** table → chunk indexes whose presence bitmap changed. */
  readonly dirtyChunks = new Map<number, Set<number>>();
  readonly released: Run[] = [];
  readonly allocated: Run[] = [];
  private readonly undo: Array<() => void> = [];
  /** True while a metadata operation runs: changes are then undoable. */
  transactional = false;

  put(db: DbName, key: Key, value: unknown): void {
    this.records.set(recordKey(db, key), { db, key, value });
  }

  remove(db: DbName, key: Key): void {
    this.records.set(recordKey(db, key), { db, key, value: undefined });
  }

  /** Pending map value: a number, null (removed), or undefined (not staged). */
  pendingMap(table: number, block: number): number | null | undefined {
    return this.mapOps.get(table)?.get(block);
  }

  setMap(table: number, block: number, physical: number | null): void {
    let ops = this.mapOps.get(table);
    if (ops === undefined) {
      ops = new Map();
      this.mapOps.set(table, ops);
    }
    if (this.transactional) {
      const had = ops.has(block);
      const before = ops.get(block);
      this.onAbort(() => (had ? ops.set(block, before!) : ops.delete(block)));
    }
    ops.set(block, physical);
  }

  markChunk(table: number, chunk: number): void {
    let set = this.dirtyChunks.get(table);
    if (set === undefined) {
      set = new Set();
      this.dirtyChunks.set(table, set);
    }
    set.add(chunk);
  }

  /** Registers how to undo an in-memory change if the batch is aborted. No-op outside a transaction. */
  onAbort(fn: () => void): void {
    if (this.transactional) this.undo.push(fn);
  }

  get isEmpty(): boolean {
    return (
      this.records.size === 0 &&
      this.mapOps.size === 0 &&
      this.dirtyChunks.size === 0 &&
      this.released.length === 0
    );
  }

  /** Number of store entries the commit will write (records + map entries + presence chunks). */
  get entryCount(): number {
    let n = this.records.size;
    for (const ops of this.mapOps.values()) n += ops.size;
    for (const set of this.dirtyChunks.values()) n += set.size;
    return n;
  }

  recordOps(): Iterable<StoreOp> {
    return this.records.values();
  }

  /** Runs the undo log, newest first. */
  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]!();
    this.undo.length = 0;
  }

  clear(): void {
    this.records.clear();
    this.mapOps.clear();
    this.dirtyChunks.clear();
    this.released.length = 0;
    this.allocated.length = 0;
    this.undo.length = 0;
  }
}

function recordKey(db: string, key: unknown): string {
  return `${db}\u0000${JSON.stringify(key)}`;
}
