/**
 * NbdExports over an engine Pool: every vdisk by name (one writer at a time:
 * a client that connects while another holds the writer slot gets the export
 * read-only), every vdisk snapshot read-only as `name@snapshot`.
 *
 * A name is resolved once, when the client opens the export: the session is
 * then bound to the container's id, uuid, generation and size (a snapshot's
 * id and uuid), checked on every request. Once the container was deleted,
 * re-synced, reverted or resized (the snapshot deleted) the session's
 * requests fail with ESHUTDOWN and reach nothing, whatever now has the name.
 */
import type { AllocationExtent, Pool } from '../engine';
import { isSnapsyncError } from '../engine/errors';
import type { NbdBackend, NbdExportInfo, NbdExports, NbdExtent } from './backend';
import { NBD_ERR } from './constants';
import { NbdError } from './errors';
import type { SessionTarget } from './sessions';

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

const endedError = (name: string) =>
  new NbdError(
    'SHUTDOWN',
    `the session on "${name}" has ended: the disk was changed under it (sync, revert, resize or delete); reconnect`,
    NBD_ERR.ESHUTDOWN,
  );

/** Engine lookups that mean "no such export" rather than a failure. */
function missing(err: unknown): boolean {
  return isSnapsyncError(err, 'NOT_FOUND') || isSnapsyncError(err, 'INVALID_ARGUMENT');
}

export class EngineExports implements NbdExports {
  /** vdisk uuid → the backend holding its writer slot. */
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
        readOnly: this.writers.get(c.uuid)?.live() === true,
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
    if (name.includes('@')) {
      const s = this.pool.describeSnapshot(name);
      return new SnapshotBackend(this.pool, name, info.size, {
        kind: 'snapshot',
        id: s.id,
        uuid: s.uuid,
        container: s.container,
        snapshot: s.name,
      });
    }
    const c = this.pool.describe(name);
    const target: SessionTarget = {
      kind: 'vdisk',
      id: c.id,
      uuid: c.uuid,
      generation: c.generation,
      container: c.name,
    };
    const backend = new VdiskBackend(this.pool, name, info.size, info.readOnly, target, () => {
      if (this.writers.get(c.uuid) === backend) this.writers.delete(c.uuid);
    });
    if (!info.readOnly) this.writers.set(c.uuid, backend);
    return backend;
  }

  /** Names of vdisks a client is writing now (for status pages and tests). */
  activeWriters(): string[] {
    return [...this.writers.values()].map((b) => b.name);
  }
}

class VdiskBackend implements NbdBackend {
  readonly blockSize: number;
  private closed = false;
  private stopped = false;

  constructor(
    private readonly pool: Pool,
    readonly name: string,
    readonly size: number,
    readonly readOnly: boolean,
    readonly target: SessionTarget & { kind: 'vdisk' },
    private readonly release: () => void,
  ) {
    this.blockSize = pool.blockSize;
  }

  /** The container's current name while it is still the disk this session opened; otherwise ESHUTDOWN. */
  private bound(): string {
    const t = this.target;
    const name = this.stopped ? null : this.pool.attachedContainer(t.id, t.uuid, t.generation, this.size);
    if (name === null) throw endedError(this.name);
    return name;
  }

  /** Still bound to the disk it opened (a session ended by a sync or revert holds no writer slot). */
  live(): boolean {
    const t = this.target;
    return !this.stopped && this.pool.attachedContainer(t.id, t.uuid, t.generation, this.size) !== null;
  }

  private writable(): string {
    if (this.readOnly) throw readOnlyError(this.name);
    return this.bound();
  }

  read(offset: number, target: Buffer): void {
    this.pool.read(this.bound(), offset, target.length, target);
  }

  write(offset: number, data: Buffer): void {
    this.pool.write(this.writable(), offset, data);
  }

  flush(): Promise<void> {
    // A stopped session's writes were flushed when it was stopped; a flush now must not report success.
    if (this.stopped) return Promise.reject(endedError(this.name));
    return this.pool.flush();
  }

  trim(offset: number, length: number): void {
    this.pool.trim(this.writable(), offset, length);
  }

  writeZeroes(offset: number, length: number, noHole: boolean): void {
    const name = this.writable();
    if (!noHole) {
      this.pool.writeZeroes(name, offset, length);
      return;
    }
    // NO_HOLE: the range must stay allocated, so real zero blocks are written.
    const zeros = Buffer.alloc(Math.min(length, ZERO_PIECE));
    for (let done = 0; done < length; done += zeros.length) {
      const take = Math.min(zeros.length, length - done);
      this.pool.write(name, offset + done, take === zeros.length ? zeros : zeros.subarray(0, take));
    }
  }

  blockStatus(offset: number, length: number): NbdExtent[] {
    return toExtents(this.pool.allocation(this.bound(), offset, length));
  }

  drain(): Promise<void> {
    return this.pool.flush();
  }

  stop(): void {
    this.stopped = true;
    // The writer slot goes with it: the next client of the (new) disk may write.
    this.release();
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
  private stopped = false;

  constructor(
    private readonly pool: Pool,
    readonly name: string,
    readonly size: number,
    readonly target: SessionTarget & { kind: 'snapshot' },
  ) {
    this.blockSize = pool.blockSize;
  }

  /** The snapshot while it is still the one this session opened (not deleted); otherwise ESHUTDOWN. */
  private bound(): string {
    if (this.stopped || !this.pool.attachedSnapshot(this.target.id, this.target.uuid))
      throw endedError(this.name);
    return `${this.target.container}@${this.target.snapshot}`;
  }

  read(offset: number, target: Buffer): void {
    this.pool.readSnapshot(this.bound(), offset, target.length).copy(target);
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
    return toExtents(this.pool.snapshotAllocation(this.bound(), offset, length));
  }

  stop(): void {
    this.stopped = true;
  }

  close(): void {}
}
