/** ContainerView over a data container, for identity profiles: normal copy-on-write I/O, counted. */
import { readRange, writeRange, zeroRange } from './block-io';
import type { EngineCore } from './core';
import { OUT_OF_RANGE, TYPE_MISMATCH } from './errors';
import type { ContainerRecord } from './store/records';
import type { ContainerView } from './types';

export class EngineContainerView implements ContainerView {
  private readonly touched = new Set<number>();

  constructor(
    private readonly core: EngineCore,
    private readonly containerId: number,
  ) {}

  private get record(): ContainerRecord {
    return this.core.catalog.container(this.containerId);
  }

  get name(): string {
    return this.record.name;
  }

  get type() {
    return this.record.type;
  }

  size(): number {
    return this.record.size;
  }

  read(offset: number, length: number): Buffer {
    const c = this.record;
    if (offset < 0 || length < 0 || offset + length > c.size)
      throw OUT_OF_RANGE(c.name, offset, length, c.size);
    return readRange(this.core, this.core.tables.get(c.table!), offset, length);
  }

  write(offset: number, data: Buffer): void {
    let c = this.record;
    if (offset < 0 || offset + data.length > c.size) {
      if (c.type !== 'file' || offset < 0) throw OUT_OF_RANGE(c.name, offset, data.length, c.size);
      c = { ...c, size: offset + data.length };
      this.core.catalog.putContainer(this.core.batch, c);
    }
    writeRange(this.core, this.core.tables.get(c.table!), offset, data);
    this.count(offset, data.length);
  }

  truncate(length: number): void {
    const c = this.record;
    if (c.type !== 'file') throw TYPE_MISMATCH('only a file can be truncated', { container: c.name });
    if (length < c.size) {
      zeroRange(this.core, this.core.tables.get(c.table!), length, c.size - length);
      this.count(length, c.size - length);
    }
    this.core.catalog.putContainer(this.core.batch, { ...c, size: length });
  }

  blocksWritten(): number {
    return this.touched.size;
  }

  private count(offset: number, length: number): void {
    const bs = this.core.blockSize;
    for (let b = Math.floor(offset / bs); b * bs < offset + length; b++) this.touched.add(b);
  }
}
