/**
 * NbdExports over an engine Pool: every vdisk by name, every vdisk snapshot
 * read-only as `name@snapshot`.
 *
 * One writer per vdisk: a client that connects while another holds the
 * writer slot gets the export read-only. The slot is held by a client, not a
 * connection: more connections of the same client join it as writers (NBD
 * multi-conn: nbdcopy --connections, QEMU's multi-conn), and their sessions
 * see NBD_FLAG_CAN_MULTI_CONN. A client is an authenticated TLS identity, or
 * on the Unix socket the process the kernel names (unix-peer.ts). A client
 * without either (loopback TCP without TLS, a host without koffi) cannot be
 * told apart from another one, so it writes through one connection and is
 * not offered multi-conn on a writable export. Snapshot exports offer it to
 * everyone.
 *
 * A name is resolved once, when the client opens the export: a vdisk session
 * is then bound to the container's id, uuid, generation and size, checked on
 * every request. Once the container was deleted, re-synced, reverted or
 * resized the session's requests fail with ESHUTDOWN and reach nothing,
 * whatever now has the name. A snapshot session pins the snapshot and reads
 * it through everything, its deletion included (it is then hidden, and freed
 * when the last reader goes).
 */
import type { AllocationExtent, Pool, SnapshotPin } from '../engine';
import type { BlockLocation } from '../engine/block-io';
import { isSnapsyncError } from '../engine/errors';
import type { MappingListener } from '../engine/mapping-events';
import type {
  DirectReads,
  NbdBackend,
  NbdClientId,
  NbdExportDescription,
  NbdExportInfo,
  NbdExports,
  NbdExtent,
} from './backend';
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

/** The connections of one client holding a vdisk's writer slot. */
interface WriterGroup {
  readonly client: NbdClientId;
  readonly members: Set<VdiskBackend>;
}

/**
 * A session's direct reads (backend.ts): locations come from the engine
 * while the session is bound; once it is stopped or closed there are none,
 * and whoever read on its behalf was told to stop.
 */
class SessionDirectReads implements DirectReads {
  private readonly stops = new Set<() => void>();
  private revoked = false;

  constructor(
    readonly paths: string[],
    readonly blockSize: number,
    readonly key: string,
    private readonly pool: Pool,
    private readonly where: (first: number, count: number) => BlockLocation | null,
  ) {}

  locate(first: number, count: number): BlockLocation | null {
    if (this.revoked) return null;
    try {
      return this.where(first, count);
    } catch {
      // Ended, out of range, pool closed: the backend answers the read itself, with its error.
      return null;
    }
  }

  listen(listener: MappingListener): () => void {
    return this.pool.mappingEvents.listen(listener);
  }

  onStop(stopped: () => void): () => void {
    if (this.revoked) {
      stopped();
      return () => {};
    }
    this.stops.add(stopped);
    return () => this.stops.delete(stopped);
  }

  revoke(): void {
    if (this.revoked) return;
    this.revoked = true;
    for (const stopped of [...this.stops]) stopped();
    this.stops.clear();
  }
}

const liveGroup = (g: WriterGroup | undefined): g is WriterGroup =>
  g !== undefined && [...g.members].some((b) => b.live());

export class EngineExports implements NbdExports {
  /** vdisk uuid → the client (connections) holding its writer slot. */
  private readonly writers = new Map<string, WriterGroup>();

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

  describe(name: string, client: NbdClientId = null): NbdExportDescription | null {
    try {
      if (name.includes('@')) {
        const s = this.pool.describeSnapshot(name);
        if (s.containerType !== 'vdisk') return null;
        return {
          size: s.size,
          readOnly: true,
          multiConn: true,
          blockSize: this.pool.blockSize,
          description: 'snapshot',
        };
      }
      const c = this.pool.describe(name);
      if (c.type !== 'vdisk') return null;
      const group = this.writers.get(c.uuid);
      const readOnly = liveGroup(group) && (client === null || group.client !== client);
      return {
        size: c.size,
        readOnly,
        // Read-only: every connection sees the same data. Writable: only a client that can open more writers.
        multiConn: readOnly || client !== null,
        blockSize: this.pool.blockSize,
        description: 'vdisk',
      };
    } catch (err) {
      if (missing(err)) return null;
      throw err;
    }
  }

  open(name: string, client: NbdClientId = null): NbdBackend | null {
    const info = this.describe(name, client);
    if (info === null) return null;
    if (name.includes('@')) {
      const s = this.pool.describeSnapshot(name);
      return new SnapshotBackend(
        this.pool.pinSnapshot(s.uuid),
        name,
        { kind: 'snapshot', id: s.id, uuid: s.uuid, container: s.container, snapshot: s.name },
        this.pool,
      );
    }
    const c = this.pool.describe(name);
    const target: SessionTarget = {
      kind: 'vdisk',
      id: c.id,
      uuid: c.uuid,
      generation: c.generation,
      container: c.name,
    };
    let group = this.writers.get(c.uuid);
    if (!info.readOnly && !liveGroup(group)) {
      group = { client, members: new Set() };
      this.writers.set(c.uuid, group);
    }
    const joined = info.readOnly ? null : group!;
    const backend = new VdiskBackend(this.pool, name, info, target, () => {
      if (joined === null) return;
      joined.members.delete(backend);
      if (joined.members.size === 0 && this.writers.get(c.uuid) === joined) this.writers.delete(c.uuid);
    });
    joined?.members.add(backend);
    return backend;
  }

  /** Names of vdisks a client is writing now (for status pages and tests). */
  activeWriters(): string[] {
    return [...this.writers.values()].flatMap((g) => [...g.members].map((b) => b.name));
  }
}

class VdiskBackend implements NbdBackend {
  readonly blockSize: number;
  readonly size: number;
  readonly readOnly: boolean;
  readonly multiConn: boolean;
  private closed = false;
  private stopped = false;
  readonly directReads: SessionDirectReads;

  constructor(
    private readonly pool: Pool,
    readonly name: string,
    info: NbdExportDescription,
    readonly target: SessionTarget & { kind: 'vdisk' },
    private readonly release: () => void,
  ) {
    this.blockSize = pool.blockSize;
    this.size = info.size;
    this.readOnly = info.readOnly;
    this.multiConn = info.multiConn;
    const t = target;
    const key = `vdisk:${t.id}:${t.uuid}:${t.generation}:${info.size}`;
    this.directReads = new SessionDirectReads(pool.dataPaths, pool.blockSize, key, pool, (first, count) =>
      this.pool.locate(this.bound(), first, count),
    );
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

  /** Throws ESHUTDOWN once the session was stopped: checked again when a request got its blocks. */
  private readonly stillBound = () => {
    this.bound();
  };

  read(offset: number, target: Buffer): Promise<void> | undefined {
    const name = this.bound();
    if (this.pool.readNow(name, offset, target)) return undefined;
    return this.pool.readAsync(name, offset, target, this.stillBound);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    await this.pool.writeAsync(this.writable(), offset, data, this.stillBound);
  }

  writeNow(offset: number, data: Buffer): boolean {
    return this.pool.writeNow(this.writable(), offset, data);
  }

  flush(): Promise<void> {
    // A stopped session's writes were flushed when it was stopped; a flush now must not report success.
    if (this.stopped) return Promise.reject(endedError(this.name));
    return this.pool.flush();
  }

  async trim(offset: number, length: number): Promise<void> {
    await this.pool.writeZeroesAsync(this.writable(), offset, length, this.stillBound);
  }

  async writeZeroes(offset: number, length: number, noHole: boolean): Promise<void> {
    const name = this.writable();
    if (!noHole) {
      await this.pool.writeZeroesAsync(name, offset, length, this.stillBound);
      return;
    }
    // NO_HOLE: the range must stay allocated, so real zero blocks are written.
    const zeros = Buffer.alloc(Math.min(length, ZERO_PIECE));
    for (let done = 0; done < length; done += zeros.length) {
      const take = Math.min(zeros.length, length - done);
      const piece = take === zeros.length ? zeros : zeros.subarray(0, take);
      await this.pool.writeAsync(name, offset + done, piece, this.stillBound);
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
    this.directReads.revoke();
    // The writer slot goes with it: the next client of the (new) disk may write.
    this.release();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.directReads.revoke();
    this.release();
  }
}

/**
 * A reader of a snapshot: it pins the snapshot (Pool.pinSnapshot) and reads
 * through the pin, by the snapshot's table, never by its name. A deleted
 * snapshot is hidden and still read here, exactly as it was; the engine frees
 * it when the last reader closes.
 */
class SnapshotBackend implements NbdBackend {
  readonly readOnly = true;
  readonly multiConn = true;
  readonly blockSize: number;
  private stopped = false;
  readonly directReads: SessionDirectReads;

  constructor(
    private readonly pin: SnapshotPin,
    readonly name: string,
    readonly target: SessionTarget & { kind: 'snapshot' },
    pool: Pool,
  ) {
    this.blockSize = pool.blockSize;
    this.directReads = new SessionDirectReads(
      pool.dataPaths,
      pool.blockSize,
      `snapshot:${target.uuid}`,
      pool,
      (first, count) => this.bound().locate(first, count),
    );
  }

  get size(): number {
    return this.pin.snapshot.size;
  }

  /** The pin while the session is not stopped; otherwise ESHUTDOWN. */
  private bound(): SnapshotPin {
    if (this.stopped) throw endedError(this.name);
    return this.pin;
  }

  read(offset: number, target: Buffer): Promise<void> | undefined {
    const pin = this.bound();
    return pin.readNow(offset, target) ? undefined : pin.readAsync(offset, target);
  }

  async write(): Promise<void> {
    throw readOnlyError(this.name);
  }

  // Nothing to make durable, but a client may still ask.
  async flush(): Promise<void> {}

  async trim(): Promise<void> {
    throw readOnlyError(this.name);
  }

  async writeZeroes(): Promise<void> {
    throw readOnlyError(this.name);
  }

  blockStatus(offset: number, length: number): NbdExtent[] {
    return toExtents(this.bound().allocation(offset, length));
  }

  stop(): void {
    this.stopped = true;
    this.directReads.revoke();
    this.pin.release();
  }

  close(): void {
    this.directReads.revoke();
    this.pin.release();
  }
}
