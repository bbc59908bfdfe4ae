/**
 * What both kinds of import write through (staged.ts: a new container;
 * import-in-place.ts: an existing one): bounds-checked writes and zeroes into
 * the container's current table, committed when the import completes. The
 * subclass says which record is its container (and throws once the import
 * ended). Cost: as block-io.ts.
 */
import { writeRange, zeroRange } from './block-io';
import type { EngineCore } from './core';
import { OUT_OF_RANGE } from './errors';
import type { ContainerRecord } from './store/records';

export abstract class ImportWriter {
  protected done = false;

  protected constructor(protected readonly core: EngineCore) {}

  /** The container being filled; throws once the import was completed or given up. */
  protected abstract get record(): ContainerRecord;

  get size(): number {
    return this.record.size;
  }

  write(offset: number, data: Buffer): void {
    const c = this.checked(offset, data.length);
    writeRange(this.core, this.core.tables.get(c.table!), offset, data);
    this.core.afterWrite();
  }

  writeZeroes(offset: number, length: number): void {
    const c = this.checked(offset, length);
    zeroRange(this.core, this.core.tables.get(c.table!), offset, length);
    this.core.afterWrite();
  }

  private checked(offset: number, length: number): ContainerRecord {
    const c = this.record;
    if (offset < 0 || length < 0 || offset + length > c.size)
      throw OUT_OF_RANGE(c.name, offset, length, c.size);
    return c;
  }
}
