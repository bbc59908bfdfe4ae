/**
 * Reader pins: an NBD session reading a snapshot holds it by its table, not
 * by its name. A pinned snapshot that is deleted is hidden (its name free
 * again) and keeps reading exactly what it held; when its last reader goes
 * it is freed, and the chain below it released like any dropped table.
 *
 * Pins live in memory only. A snapshot hidden for its readers alone carries
 * `heldByReader` on its record (snapshots.ts), so after a crash fsck knows it
 * is not a leak and the next open frees it (`freeReaderHeld`).
 */
import { type AllocationExtent, allocation, type BlockLocation, locateBlocks, readRange } from './block-io';
import { readRangeAsync, readRangeNow } from './block-io-async';
import type { EngineCore } from './core';
import { NOT_FOUND, OUT_OF_RANGE, TYPE_MISMATCH } from './errors';
import { releaseChain } from './snapshots';
import type { SnapshotRecord } from './store/records';
import type { TableState } from './table-state';
import { checkRange } from './validate';

export class SnapshotPin {
  private released = false;

  constructor(
    private readonly core: EngineCore,
    private readonly table: TableState,
    /** The snapshot as it was pinned (its name may go to another snapshot once it is deleted). */
    readonly snapshot: Readonly<Pick<SnapshotRecord, 'id' | 'uuid' | 'name' | 'size'>>,
  ) {
    table.readers++;
  }

  /** Reads the pinned snapshot, deleted or not. Into `target` when given. */
  read(offset: number, length: number, target?: Buffer): Buffer {
    this.check(offset, length);
    return readRange(this.core, this.table, offset, length, target);
  }

  /** Reads now if reads are page-cache hits lately (Pool.readNow); false: use readAsync. */
  readNow(offset: number, target: Buffer): boolean {
    this.check(offset, target.length);
    return readRangeNow(this.core, this.table, offset, target);
  }

  /** `read` with the device reads on the threadpool (tracked, so the pool closes only once they are done). */
  async readAsync(offset: number, target: Buffer): Promise<void> {
    this.check(offset, target.length);
    if (target.length === 0) return;
    // Frozen: nothing ever writes or trims it, so its range key only needs to be its own (negative table id).
    await readRangeAsync(this.core, -this.table.id, () => this.table, offset, target);
  }

  /** Where blocks [first, first + count) are read from (Pool.locate); null while a fault injector is installed. */
  locate(first: number, count: number): BlockLocation | null {
    const bs = this.core.blockSize;
    this.check(first * bs, Math.min(count * bs, this.snapshot.size - first * bs));
    if (this.core.device.faulty) return null;
    return locateBlocks(this.core, this.table, first, count);
  }

  allocation(offset: number, length: number): AllocationExtent[] {
    this.check(offset, length);
    return allocation(this.core, this.table, offset, length);
  }

  /** Whether the snapshot was deleted (it is only kept for its readers now). */
  get hidden(): boolean {
    return this.core.catalog.snapshots.get(this.snapshot.id)?.hidden !== false;
  }

  /**
   * Drops the pin (idempotent). The last reader of a deleted snapshot frees
   * it, in a metadata transaction of its own; if that cannot commit (or the
   * pool is closed) it stays hidden and the next open frees it.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.table.readers--;
    const core = this.core;
    if (this.table.readers > 0 || core.closed || !this.hidden) return;
    try {
      core.mutate(() => releaseChain(core, this.table));
    } catch (err) {
      core.onBackgroundError(err);
    }
  }

  private check(offset: number, length: number): void {
    this.core.assertOpen();
    if (this.released) throw NOT_FOUND('snapshot', this.snapshot.uuid);
    checkRange(offset, length);
    if (offset + length > this.snapshot.size)
      throw OUT_OF_RANGE(this.snapshot.name, offset, length, this.snapshot.size);
  }
}

/** Pins the visible data snapshot `uuid` for a reader. NOT_FOUND if there is none. */
export function pinSnapshot(core: EngineCore, uuid: string): SnapshotPin {
  core.assertOpen();
  let found: SnapshotRecord | undefined;
  for (const s of core.catalog.snapshots.values()) {
    if (s.uuid === uuid && !s.hidden) {
      found = s;
      break;
    }
  }
  if (found === undefined) throw NOT_FOUND('snapshot', uuid);
  if (found.table === null)
    throw TYPE_MISMATCH(`snapshot "${found.name}" is a VM snapshot: read its members`, {
      snapshot: found.name,
    });
  return new SnapshotPin(core, core.tables.get(found.table), found);
}

/**
 * At open, no reader holds anything: frees the snapshots a crash (or a close
 * with readers attached) left hidden for readers alone, and the chain below
 * them. Returns how many. A failed commit leaves them for the next open.
 */
export function freeReaderHeld(core: EngineCore): number {
  const held = [...core.catalog.snapshots.values()].filter((s) => s.hidden && s.heldByReader === true);
  if (held.length === 0) return 0;
  try {
    core.mutate(() => {
      for (const s of held) {
        const table = s.table === null ? undefined : core.tables.tables.get(s.table);
        if (table === undefined) continue; // fsck reports it
        if (table.dependents === 0) releaseChain(core, table);
        else {
          // Not expected (only a reader held it), but then it is an ordinary hidden snapshot.
          const { heldByReader: _, ...record } = s;
          core.catalog.putSnapshot(core.batch, record);
        }
      }
    });
  } catch {
    return 0;
  }
  return held.length;
}
