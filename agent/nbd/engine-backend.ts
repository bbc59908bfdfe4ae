/**
 * NbdExports over an engine Pool: every vdisk by name (one writer at a time:
 * a client that connects while another holds the writer slot gets the export
 * read-only), every vdisk snapshot read-only as `name@snapshot`.
 */
import type { AllocationExtent, Pool } from '../engine';
import { isSnapsyncError } from '../engine/errors';
import type { NbdBackend, NbdExportInfo, NbdExports, NbdExtent } from './backend';
import { NBD_ERR } from './constants';
import { NbdError } from './errors';

/** Zero buffer reused for NO_HOLE zeroing, written a piece at a time. */
const ZERO_PIECE = 1024 * 1024;

function toExtents(extents: AllocationExtent[]): NbdExtent[] {
  return extents.map((e) => ({
    offset: e.offset,
    length: e.length,
    hole: e.state === 'hole',
    zero: e.state !== 'data',
  }));
}

const readOnlyError = (name: string) =>
  new NbdError('READ_ONLY', `export "${name}" is read-only`, NBD_ERR.EPERM);

/** Engine lookups that mean "no such export" rather than a failure. */
function missing(err: unknown): boolean {
  return isSnapsyncError(err, 'NOT_FOUND') || isSnapsyncError(err, 'INVALID_ARGUMENT');
}

export class EngineExports implements NbdExports {
  /** vdisk name → the backend holding its writer slot. */
  private readonly writers = new Map<string, VdiskBackend>();

  constructor(private readonly pool: Pool) {}

  list(): NbdExportInfo[] {
    const out: NbdExportInfo[] = [];
    for (const c of this.pool.listContainers()) {
      if (c.type === 'vdisk') out.push({ name: c.name, description: `vdisk, ${c.size} bytes` });
    }
    for (const s of this.pool.listSnapshots()) {
      if (s.containerType === 'vdisk')
        out.push({ name: `${s.container}@${s.name}`, description: `snapshot, ${s.size} bytes, read-only` });
    }
    return out;
  }

  describe(name: string) {
    try {
      if (name.includes('@')) {
        const s = this.pool.describeSnapshot(name);
        if (s.containerType !== 'vdisk') return null;
        return { size: s.size, readOnly: true, blockSize: this.pool.blockSize, description: 'snapshot' };
      }
      const c = this.pool.describe(name);
      if (c.type !== 'vdisk') return null;
      return {
        size: c.size,
        readOnly: this.writers.has(name),
        blockSize: this.pool.blockSize,
        description: 'vdisk',
      };
    } catch (err) {
      if (missing(err)) return null;
      throw err;
    }
  }

  open(name: string): NbdBackend | null {
    const info = this.describe(name);
    if (info === null) return null;
    if (name.includes('@')) return new SnapshotBackend(this.pool, name, info.size);
    const backend = new VdiskBackend(this.pool, name, info.size, info.readOnly, () => {
      if (this.writers.get(name) === backend) this.writers.delete(name);
    });
    if (!info.readOnly) this.writers.set(name, backend);
    return backend;
  }

  /** Names of vdisks a client is writing now (for status pages and tests). */
  activeWriters(): string[] {
    return [...this.writers.keys()];
  }
}

class VdiskBackend implements NbdBackend {
  readonly blockSize: number;
  private closed = false;

  constructor(
    private readonly pool: Pool,
    readonly name: string,
    readonly size: number,
    readonly readOnly: boolean,
    private readonly release: () => void,
  ) {
    this.blockSize = pool.blockSize;
  }

  read(offset: number, target: Buffer): void {
    this.pool.read(this.name, offset, target.length, target);
  }

  write(offset: number, data: Buffer): void {
    if (this.readOnly) throw readOnlyError(this.name);
    this.pool.write(this.name, offset, data);
  }

  flush(): Promise<void> {
    return this.pool.flush();
  }

  trim(offset: number, length: number): void {
    if (this.readOnly) throw readOnlyError(this.name);
    this.pool.trim(this.name, offset, length);
  }

  writeZeroes(offset: number, length: number, noHole: boolean): void {
    if (this.readOnly) throw readOnlyError(this.name);
    if (!noHole) {
      this.pool.writeZeroes(this.name, offset, length);
      return;
    }
    // NO_HOLE: the range must stay allocated, so real zero blocks are written.
    const zeros = Buffer.alloc(Math.min(length, ZERO_PIECE));
    for (let done = 0; done < length; done += zeros.length) {
      const take = Math.min(zeros.length, length - done);
      this.pool.write(this.name, offset + done, take === zeros.length ? zeros : zeros.subarray(0, take));
    }
  }

  blockStatus(offset: number, length: number): NbdExtent[] {
    return toExtents(this.pool.allocation(this.name, offset, length));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
  }
}

class SnapshotBackend implements NbdBackend {
  readonly readOnly = true;
  readonly blockSize: number;

  constructor(
    private readonly pool: Pool,
    readonly name: string,
    readonly size: number,
  ) {
    this.blockSize = pool.blockSize;
  }

  read(offset: number, target: Buffer): void {
    this.pool.readSnapshot(this.name, offset, target.length).copy(target);
  }

  write(): void {
    throw readOnlyError(this.name);
  }

  // Nothing to make durable, but a client may still ask.
  async flush(): Promise<void> {}

  trim(): void {
    throw readOnlyError(this.name);
  }

  writeZeroes(): void {
    throw readOnlyError(this.name);
  }

  blockStatus(offset: number, length: number): NbdExtent[] {
    return toExtents(this.pool.snapshotAllocation(this.name, offset, length));
  }

  close(): void {}
}
