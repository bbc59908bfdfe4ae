/**
 * Pool: the engine's public API (see API.md). Opens/creates a pool directory
 * (metadata store + data file, or data on a given device/file), checks its
 * format, takes the pool lock, and routes each operation to its module.
 * Every mutating call is one metadata transaction; data writes are staged
 * and made durable by `flush()`.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type AllocationExtent,
  allocation,
  type BlockLocation,
  locateBlocks,
  readRange,
  writeRange,
  zeroRange,
} from './block-io';
import {
  readRangeAsync,
  readRangeNow,
  writeRangeAsync,
  writeRangeNow,
  zeroRangeHeld,
} from './block-io-async';
import { Catalog } from './catalog';
import { giveCloneIdentity } from './clone-identity';
import { cloneSnapshot, revertContainer } from './clone-revert';
import {
  addMember,
  type ContainerSpec,
  createContainer,
  deleteContainer,
  removeMember,
  resizeContainer,
  setLabels,
} from './containers';
import { EngineCore, type MutationOptions } from './core';
import { checkDataFileEnds } from './data-file-ends';
import { readDataMarks, recordDataPaths, refuseContradictingMarks } from './data-marks';
import {
  CORRUPT,
  HOST_OUT_OF_SPACE,
  INVALID_ARGUMENT,
  isSnapsyncError,
  NOT_FOUND,
  OUT_OF_RANGE,
  type SnapsyncError,
  TYPE_MISMATCH,
  UNSUPPORTED_VERSION,
} from './errors';
import { flattenContainer, type Progress } from './flatten';
import { dataFileSizes, type FsckReport, fsck } from './fsck';
import { type GrowOptions, grownCapacity, growPool } from './grow';
import { ImportInPlace, restoreInterruptedImports } from './import-in-place';
import { containerInfo, snapshotInfo } from './infos';
import type { MappingEvents } from './mapping-events';
import { freeReaderHeld, pinSnapshot, type SnapshotPin } from './pins';
import { checkDataPath, checkPoolDirectory, removeCreated } from './pool-create-checks';
import { poolMetadataDir } from './pool-dir';
import { asPoolReadOnly } from './pool-read-only';
import { overcommitRatio, overcommitWarning, provisionedBytes } from './provisioning';
import { reclaimAll, reclaimStep } from './reclaim';
import { deleteSnapshot, findSnapshot, type SnapshotSelector, takeSnapshot } from './snapshots';
import { SpaceMap } from './space-map';
import { discardIncomplete, StagedContainer } from './staged';
import { BlockDevice } from './store/block-device';
import { stampDataGeneration } from './store/data-generation';
import { dataFilePaths, MAX_DATA_FILES } from './store/data-layout';
import { clearDataOwner, dataOwner, markDataOwner, markedFiles } from './store/data-owner';
import { MAX_PHYSICAL_BLOCK } from './store/group-record';
import {
  CURRENT_FORMAT_VERSION,
  DB,
  FORMAT_NAME,
  META_HWM,
  META_POOL,
  SUPPORTED_FORMAT_VERSIONS,
} from './store/keys';
import { defaultReserveBytes, MetadataReserve } from './store/metadata-reserve';
import { MetadataStore, type StoreOp } from './store/metadata-store';
import { migrate } from './store/migrations';
import { PoolLock } from './store/pool-lock';
import type { ContainerRecord, IdempotencyRecord, PoolRecord } from './store/records';
import { type SyncHooks, type SyncResult, syncContainer } from './sync';
import { TableRegistry } from './tables';
import type { ContainerInfo, PoolInfo, SnapshotInfo, Usage } from './types';
import { containerUsage } from './usage';
import { checkRange, checkUserSnapshotName } from './validate';

export interface CreatePoolOptions {
  /** Bytes per block: a power of two from 4 KiB to 1 MiB (default 64 KiB). Fixed for the pool's life. */
  blockSize?: number;
  /** Data on this file or block device instead of `<dir>/data`. */
  dataPath?: string;
  /** Take a `dataPath` file that holds data (allocated blocks): what it holds is lost. */
  overwriteData?: boolean;
  /**
   * Data files to stripe blocks over (store/data-layout.ts), 1 to 64: `<dir>/data`,
   * `<dir>/data.1`, … (default DEFAULT_DATA_FILES). With `dataPath`: 1, the only choice.
   */
  dataFiles?: number;
  /** Capacity of the data area (default: the device's size, or 1 TiB of sparse file). */
  capacityBytes?: number;
  /** Host space kept for metadata commits when the filesystem fills (default: capacity/256, 1–16 MiB; store/metadata-reserve.ts). */
  metadataReserveBytes?: number;
}

export interface OpenPoolOptions {
  /** Owner-index cache bound, in chunks of 4096 blocks (16 KiB each). */
  ownerIndexChunks?: number;
  /** Host space kept for metadata commits when the filesystem fills (default: capacity/256, 1–16 MiB). */
  metadataReserveBytes?: number;
  /** Longest a write waits for its commit when no client flushes (default 5000 ms; 0: only a flush or a full batch commits). */
  commitIntervalMs?: number;
}

/** What a failed open or create must release again, in reverse order of taking. */
type Undo = Array<() => void>;

function undoAll(undo: Undo): void {
  for (const step of undo.reverse()) {
    try {
      step();
    } catch {
      /* releasing the rest matters more */
    }
  }
}

export interface LineageEntry {
  table: number;
  snapshot: SnapshotInfo | null;
  /** 'current' for the container's own table. */
  kind: 'current' | 'snapshot';
}

const DEFAULT_BLOCK_SIZE = 64 * 1024;
const DEFAULT_CAPACITY = 2 ** 40;
/**
 * Data files of a pool kept in its own directory: four, so that the writers
 * of several vdisks (or one vdisk's concurrent copy-ups) take four inode
 * locks, not one (store/data-layout.ts has the figures).
 */
export const DEFAULT_DATA_FILES = 4;

export class Pool {
  /** Containers an interrupted import left incomplete, deleted when this pool opened. */
  discardedAtOpen: string[] = [];
  /** The format version this open migrated the pool from (to the current one), or null. */
  migratedFrom: number | null = null;
  /** Containers an interrupted import into them had changed, put back as they were when this pool opened. */
  restoredAtOpen: string[] = [];

  private constructor(
    private readonly core: EngineCore,
    private readonly reserve: MetadataReserve,
  ) {
    core.reclaimStep = () => reclaimStep(core);
  }

  /**
   * Creates a new pool in `dir` (created if missing, else empty; pool-create-checks.ts has every
   * check). A failed create removes what it created.
   */
  static create(dir: string, options: CreatePoolOptions = {}): Pool {
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (
      !Number.isInteger(blockSize) ||
      blockSize < 4096 ||
      blockSize > 1048576 ||
      (blockSize & (blockSize - 1)) !== 0
    ) {
      throw INVALID_ARGUMENT('block size must be a power of two from 4096 to 1048576 bytes', {
        argument: 'blockSize',
        value: blockSize,
      });
    }
    const before = checkPoolDirectory(dir);
    const dataPath = path.resolve(options.dataPath ?? path.join(dir, 'data'));
    const dataFiles = options.dataFiles ?? (options.dataPath ? 1 : DEFAULT_DATA_FILES);
    if (
      !Number.isInteger(dataFiles) ||
      dataFiles < 1 ||
      dataFiles > MAX_DATA_FILES ||
      (options.dataPath && dataFiles !== 1)
    )
      throw INVALID_ARGUMENT(
        options.dataPath
          ? 'data on a named file or device is one data file: dataFiles must be 1'
          : `dataFiles must be an integer from 1 to ${MAX_DATA_FILES}`,
        { argument: 'dataFiles', value: dataFiles },
      );
    let capacityBytes = options.capacityBytes;
    if (options.dataPath) {
      const size = checkDataPath(dataPath, options.overwriteData === true);
      capacityBytes = Math.min(capacityBytes ?? size, size);
    }
    const capacityBlocks = Math.floor((capacityBytes ?? DEFAULT_CAPACITY) / blockSize);
    if (capacityBlocks < 1) {
      throw INVALID_ARGUMENT('capacity must hold at least one block', { argument: 'capacityBytes' });
    }
    // Format 2 stores physical block numbers as u32 (store/group-record.ts).
    if (capacityBlocks > MAX_PHYSICAL_BLOCK) {
      throw INVALID_ARGUMENT(
        `capacity must be at most ${MAX_PHYSICAL_BLOCK} blocks; use a larger block size`,
        {
          argument: 'capacityBytes',
        },
      );
    }
    // Everything checked: only now is anything created, and a failure from here on removes it again.
    const firstMadeDir = fs.mkdirSync(dir, { recursive: true });
    // Every container's data is in it: the owner's alone (a umask of 022 would let every user read it).
    fs.chmodSync(dir, 0o700);
    const lock = PoolLock.acquire(dir);
    const undo: Undo = [() => lock.release(), () => removeCreated(dir, before, firstMadeDir)];
    try {
      if (!options.dataPath) {
        for (const file of dataFilePaths(dataPath, dataFiles)) fs.closeSync(fs.openSync(file, 'a', 0o600));
        // Their names durable before the record that says they exist.
        syncDirectory(dir);
      }
      const reserve = new MetadataReserve(
        dir,
        options.metadataReserveBytes ?? defaultReserveBytes(capacityBlocks * blockSize),
      );
      undo.push(() => reserve.close());
      // Headroom first: a pool that starts without it could be wedged by the first full disk.
      if (!reserve.take()) throw HOST_OUT_OF_SPACE(`create pool: ${reserve.bytes} bytes of metadata reserve`);
      const store = MetadataStore.open(path.join(dir, 'meta'));
      undo.push(() => void store.close());
      const uuid = randomUUID();
      // Each data file (a loop device's backing file) says whose it is, so init --data knows it even
      // while this pool is stopped; a failed create gives a file taken with overwriteData back its mark.
      for (const file of markedFiles(dataFilePaths(dataPath, dataFiles))) {
        const previous = dataOwner(file);
        if (markDataOwner(file, uuid) && options.dataPath)
          undo.push(() => (previous === null ? clearDataOwner(file) : markDataOwner(file, previous)));
      }
      const record: PoolRecord = {
        v: 1,
        format: FORMAT_NAME,
        formatVersion: CURRENT_FORMAT_VERSION,
        uuid,
        blockSize,
        capacityBlocks,
        // Relative for the default data file, so a pool directory can be moved or restored elsewhere.
        dataPath: options.dataPath ? dataPath : 'data',
        dataFiles,
        createdAt: new Date().toISOString(),
      };
      store.commit([
        { db: DB.meta, key: META_POOL, value: record },
        { db: DB.meta, key: META_HWM, value: 1 },
      ]);
      return Pool.assemble(dir, store, record, lock, reserve, {}, undo);
    } catch (err) {
      undoAll(undo);
      throw err;
    }
  }

  /**
   * Opens an existing pool. POOL_LOCKED if open elsewhere; UNSUPPORTED_VERSION for unknown formats;
   * POOL_READ_ONLY if its files cannot be opened for writing (a read-only filesystem, another owner).
   */
  static open(dir: string, options: OpenPoolOptions = {}): Pool {
    const metaDir = poolMetadataDir(dir, 'dir');
    try {
      return Pool.openWritable(dir, metaDir, options);
    } catch (err) {
      throw asPoolReadOnly(dir, err);
    }
  }

  private static openWritable(dir: string, metaDir: string, options: OpenPoolOptions): Pool {
    const lock = PoolLock.acquire(dir);
    const undo: Undo = [() => lock.release()];
    try {
      const store = MetadataStore.open(metaDir);
      undo.push(() => void store.close());
      const stored = store.get<PoolRecord>(DB.meta, META_POOL);
      if (stored?.format !== FORMAT_NAME) throw CORRUPT(`${dir} has no valid pool record`);
      if (!SUPPORTED_FORMAT_VERSIONS.includes(stored.formatVersion)) {
        throw UNSUPPORTED_VERSION(dir, stored.formatVersion, SUPPORTED_FORMAT_VERSIONS);
      }
      const reserve = new MetadataReserve(
        dir,
        options.metadataReserveBytes ?? defaultReserveBytes(stored.capacityBlocks * stored.blockSize),
      );
      undo.push(() => reserve.close());
      // Best effort: a pool whose host is full still opens (so deletes can free space), its data file not growing.
      reserve.take();
      // An older format is migrated here, in one transaction (store/migrations): each step whole or not at all.
      // Not metadata its data files say is older than they are (data-marks.ts): that is refused as it stands.
      if (stored.formatVersion !== CURRENT_FORMAT_VERSION)
        refuseContradictingMarks(recordDataPaths(dir, stored), stored.uuid, store.generation);
      store.onNoSpace = () => reserve.release();
      const record = migrate(store, stored);
      const pool = Pool.assemble(dir, store, record, lock, reserve, options, undo);
      if (record !== stored) pool.migratedFrom = stored.formatVersion;
      return pool;
    } catch (err) {
      undoAll(undo);
      throw err;
    }
  }

  private static assemble(
    dir: string,
    store: MetadataStore,
    record: PoolRecord,
    lock: PoolLock,
    reserve: MetadataReserve,
    options: OpenPoolOptions,
    undo: Undo,
  ): Pool {
    const device = new BlockDevice(recordDataPaths(dir, record), record.blockSize);
    undo.push(() => device.close());
    checkDataMarks(store, device.paths, record.uuid);
    // A metadata commit that finds the host full gives the reserve back and tries again.
    store.onNoSpace = () => reserve.release();
    if (device.sharesFilesystemWith(dir)) device.growthGate = () => reserve.allowsGrowth();
    const hwm = store.get<number>(DB.meta, META_HWM) ?? 1;
    const extents = [...store.entries<number, number>(DB.free)].map(({ key, value }) => ({
      start: key,
      count: value,
    }));
    const space = new SpaceMap(hwm, record.capacityBlocks, extents);
    checkDataFileEnds(device, space);
    const tables = new TableRegistry(store, options.ownerIndexChunks);
    tables.load();
    const catalog = new Catalog();
    catalog.load(store);
    const pool = new Pool(new EngineCore(dir, record, store, device, lock, space, tables, catalog), reserve);
    if (options.commitIntervalMs !== undefined) pool.core.commitIntervalMs = options.commitIntervalMs;
    pool.pruneIdempotency();
    pool.discardedAtOpen = discardIncomplete(pool.core);
    pool.restoredAtOpen = restoreInterruptedImports(pool.core);
    // Reader pins are not stored: what only a reader held before the last close or crash goes now.
    freeReaderHeld(pool.core);
    pool.core.scheduleReclaim();
    return pool;
  }

  /**
   * Flushes, waits for durability, and releases the pool. Idempotent. If the
   * last commit fails (a full host), the pool is released all the same and
   * the error thrown after: writes no flush acknowledged are then lost.
   */
  async close(): Promise<void> {
    const core = this.core;
    if (core.closed) return;
    // Nothing may still be on the threadpool when the data file closes.
    await core.io.quiesce();
    await core.autoCommit;
    if (core.closed) return;
    core.stopCommitTimer();
    let failure: unknown = null;
    try {
      core.commit();
    } catch (err) {
      failure = err;
    }
    core.closed = true;
    try {
      await core.store.close();
    } finally {
      core.device.close();
      this.reserve.close();
      core.lock.release();
    }
    if (failure !== null) throw failure;
  }

  /** The last commit's error while commits fail (since when), else null: see EngineCore.commitFailure. */
  get commitFailure(): { error: unknown; since: Date } | null {
    return this.core.commitFailure;
  }

  get blockSize(): number {
    return this.core.blockSize;
  }

  /** Bytes large writes have put around the page cache since open (O_DIRECT; /metrics). */
  get directBytesWritten(): number {
    return this.core.device.directBytesWritten;
  }

  /** Test and drill seam: the data device (fault injection). */
  get device(): BlockDevice {
    return this.core.device;
  }

  /** Called with errors from background work (the reclaimer). */
  set onBackgroundError(handler: (err: unknown) => void) {
    this.core.onBackgroundError = handler;
  }

  /** Called once per damaged map entry a read or write met (it failed with this CORRUPT error). */
  set onDamage(handler: (err: SnapsyncError) => void) {
    this.core.damaged.onDamage = handler;
  }

  info(): PoolInfo {
    const { record, space, catalog } = this.core;
    const provisioned = provisionedBytes(catalog);
    return {
      uuid: record.uuid,
      formatVersion: record.formatVersion,
      blockSize: record.blockSize,
      capacityBlocks: record.capacityBlocks,
      usedBlocks: space.usedBlocks,
      freeBlocks: space.freeBlocks,
      dataPath: this.core.device.path,
      dataFiles: [...this.core.device.paths],
      containers: [...catalog.containers.values()].filter((c) => !c.incomplete).length,
      snapshots: [...catalog.snapshots.values()].filter((s) => !s.hidden).length,
      provisionedBytes: provisioned,
      overcommitRatio: overcommitRatio(provisioned, this.capacityBytes()),
    };
  }

  private capacityBytes(): number {
    return this.core.record.capacityBlocks * this.core.record.blockSize;
  }

  /** Runs `op` (a create, clone or resize), adding OVERCOMMITTED to its result if it took the declared total beyond the capacity. */
  private provisioning<T extends ContainerInfo>(op: () => T): T {
    const before = provisionedBytes(this.core.catalog);
    const info = op();
    const warning = overcommitWarning(before, provisionedBytes(this.core.catalog), this.capacityBytes());
    return warning ? { ...info, warnings: [warning] } : info;
  }

  // ---- containers ----

  createContainer(spec: ContainerSpec, options: MutationOptions = {}): ContainerInfo {
    return this.core.mutate(
      () => this.provisioning(() => this.info_(createContainer(this.core, spec))),
      options,
    );
  }

  listContainers(): ContainerInfo[] {
    this.core.assertOpen();
    return [...this.core.catalog.containers.values()]
      .filter((c) => !c.incomplete)
      .sort((a, b) => a.id - b.id)
      .map((c) => this.info_(c));
  }

  /**
   * A new vdisk or file that nothing sees until `complete()` (an import):
   * a crash before that leaves nothing once the pool reopens (see staged.ts).
   */
  stageContainer(spec: ContainerSpec): StagedContainer {
    this.core.assertOpen();
    return StagedContainer.create(
      this.core,
      spec,
      (c) => this.info_(c),
      () => this.capacityBytes(),
    );
  }

  /**
   * An import into the existing vdisk or file `name`: written through the
   * returned object, kept by `complete()`, and undone by `abandon()` or by a
   * crash before `complete()` (the next open restores it; import-in-place.ts).
   */
  importInto(name: string): ImportInPlace {
    return ImportInPlace.begin(this.core, this.container(name), (c) => this.info_(c));
  }

  describe(name: string): ContainerInfo {
    this.core.assertOpen();
    return this.info_(this.core.catalog.containerByName(name));
  }

  resize(name: string, size: number, options: { shrink?: boolean } & MutationOptions = {}): ContainerInfo {
    return this.core.mutate(
      () =>
        this.provisioning(() =>
          this.info_(resizeContainer(this.core, this.container(name), size, options.shrink === true)),
        ),
      options,
    );
  }

  setLabels(name: string, labels: Record<string, string>, options: MutationOptions = {}): ContainerInfo {
    return this.core.mutate(() => this.info_(setLabels(this.core, this.container(name), labels)), options);
  }

  addMember(vm: string, role: string, member: string, options: MutationOptions = {}): ContainerInfo {
    return this.core.mutate(
      () => this.info_(addMember(this.core, this.container(vm), role, this.container(member))),
      options,
    );
  }

  removeMember(vm: string, role: string, options: MutationOptions = {}): ContainerInfo {
    return this.core.mutate(() => this.info_(removeMember(this.core, this.container(vm), role)), options);
  }

  /** Deletes a container (a VM with its members); a VM's member only with `detach` (else IS_VM_MEMBER). */
  deleteContainer(
    name: string,
    options: { recursive?: boolean; detach?: boolean } & MutationOptions = {},
  ): void {
    this.core.mutate(
      () =>
        deleteContainer(this.core, this.container(name), options.recursive === true, options.detach === true),
      options,
    );
  }

  // ---- I/O ----

  /** Reads into `target` when given (at its start; it must hold `length` bytes), else a new buffer. */
  read(name: string, offset: number, length: number, target?: Buffer): Buffer {
    const c = this.dataContainer(name);
    this.checkIo(c, offset, length);
    if (target !== undefined && (!Buffer.isBuffer(target) || target.length < length)) {
      throw INVALID_ARGUMENT('target buffer is smaller than the read', { argument: 'target' });
    }
    return readRange(this.core, this.core.tables.get(c.table!), offset, length, target);
  }

  /** Writes data; a file grows when written past its end, a vdisk does not. */
  write(name: string, offset: number, data: Buffer): void {
    let c = this.dataContainer(name);
    if (!Buffer.isBuffer(data)) throw INVALID_ARGUMENT('data must be a Buffer', { argument: 'data' });
    if (c.type === 'file' && offset + data.length > c.size) {
      checkRange(offset, data.length);
      c = this.core.mutate(() => resizeContainer(this.core, c, offset + data.length, false));
    }
    this.checkIo(c, offset, data.length);
    writeRange(this.core, this.core.tables.get(c.table!), offset, data);
    this.core.afterWrite();
  }

  /** Makes the range read as zeros, freeing whole blocks the container owned there. */
  writeZeroes(name: string, offset: number, length: number): void {
    const c = this.dataContainer(name);
    this.checkIo(c, offset, length);
    zeroRange(this.core, this.core.tables.get(c.table!), offset, length);
    this.core.afterWrite();
  }

  /** Same as writeZeroes: a trimmed range reads as zeros. */
  trim(name: string, offset: number, length: number): void {
    this.writeZeroes(name, offset, length);
  }

  // ---- I/O on the threadpool (the NBD data path: block-io-async.ts) ----

  /**
   * Reads into `target` (its whole length) with the device reads on the
   * threadpool. `check` runs once the request holds its blocks, before it
   * touches anything: it throws if the caller's binding no longer holds.
   */
  async readAsync(name: string, offset: number, target: Buffer, check?: () => void): Promise<void> {
    const c = this.dataContainer(name);
    this.checkIo(c, offset, target.length);
    if (target.length === 0) return;
    await readRangeAsync(this.core, c.id, this.currentTable(c, check), offset, target);
  }

  /**
   * Where blocks [first, first + count) of data container `name` are read
   * from now, for a reader of the data file outside the event loop
   * (nbd/relay): it must drop what it holds on `mappingEvents`. Null while
   * nothing may be read that way (a fault injector installed: every read goes
   * through the device). Memory only.
   */
  locate(name: string, first: number, count: number): BlockLocation | null {
    const c = this.dataContainer(name);
    const bs = this.core.blockSize;
    // The last block may extend past the end of a size that is not a multiple of the block size.
    this.checkIo(c, first * bs, Math.min(count * bs, c.size - first * bs));
    if (this.core.device.faulty) return null;
    return locateBlocks(this.core, this.core.tables.get(c.table!), first, count);
  }

  /** Changes outside readers of the data file must hear of (mapping-events.ts). */
  get mappingEvents(): MappingEvents {
    return this.core.tables.events;
  }

  /** The pool's directory (its metadata, lock and default data files). */
  get directory(): string {
    return this.core.dir;
  }

  /** The data files (or device), in layout order: where physical block p is, `dataLayout` says. */
  get dataPaths(): string[] {
    return this.core.device.paths;
  }

  /**
   * Reads into `target` now if reads are page-cache hits lately (true), else
   * does nothing (false: use `readAsync`). The NBD path's cheap case: no
   * promise, no thread.
   */
  readNow(name: string, offset: number, target: Buffer): boolean {
    const c = this.dataContainer(name);
    this.checkIo(c, offset, target.length);
    return readRangeNow(this.core, this.core.tables.get(c.table!), offset, target);
  }

  /**
   * Writes `data` now, on the event loop, if it is small and the device is
   * answering quickly (true); else does nothing (false: use `writeAsync`).
   * The NBD path's cheap case, with writeAsync's ordering and staging.
   */
  writeNow(name: string, offset: number, data: Buffer): boolean {
    const c = this.dataContainer(name);
    this.checkIo(c, offset, data.length);
    if (data.length === 0) return true;
    if (!writeRangeNow(this.core, c.id, this.core.tables.get(c.table!), offset, data)) return false;
    this.core.afterWrite();
    return true;
  }

  /** `write` with the device writes on the threadpool (a vdisk, or a file within its size). */
  async writeAsync(name: string, offset: number, data: Buffer, check?: () => void): Promise<void> {
    const c = this.dataContainer(name);
    this.checkIo(c, offset, data.length);
    if (data.length === 0) return;
    await writeRangeAsync(this.core, c.id, this.currentTable(c, check), offset, data);
    this.core.afterWrite();
  }

  /** `writeZeroes` (and trim) ordered with the async reads and writes of its blocks. */
  async writeZeroesAsync(name: string, offset: number, length: number, check?: () => void): Promise<void> {
    const c = this.dataContainer(name);
    this.checkIo(c, offset, length);
    if (length === 0) return;
    await zeroRangeHeld(this.core, c.id, this.currentTable(c, check), offset, length);
    this.core.afterWrite();
  }

  /**
   * Resolves when no async read or write is in flight; new ones start only
   * after the caller's synchronous continuation. The agent calls it right
   * before a synchronous metadata operation or write (io-tracker.ts).
   */
  quiesce(): Promise<void> {
    this.core.assertOpen();
    return this.core.io.quiesce();
  }

  /** Every write acknowledged before this call is durable when it resolves. */
  async flush(): Promise<void> {
    const core = this.core;
    core.assertOpen();
    // Most of the data flush happens off the event loop; the commit then only syncs what came meanwhile.
    await core.device.syncDataAsync();
    core.assertOpen();
    core.commit();
    await core.store.durable();
  }

  /** Resolves when every committed metadata change is on stable storage. */
  async durable(): Promise<void> {
    await this.core.store.durable();
  }

  allocation(name: string, offset: number, length: number): AllocationExtent[] {
    const c = this.dataContainer(name);
    this.checkIo(c, offset, length);
    return allocation(this.core, this.core.tables.get(c.table!), offset, length);
  }

  readSnapshot(ref: SnapshotSelector, offset: number, length: number): Buffer {
    const s = this.dataSnapshot(ref);
    if (offset < 0 || length < 0 || offset + length > s.size)
      throw OUT_OF_RANGE(s.name, offset, length, s.size);
    return readRange(this.core, this.core.tables.get(s.table!), offset, length);
  }

  snapshotAllocation(ref: SnapshotSelector, offset: number, length: number): AllocationExtent[] {
    const s = this.dataSnapshot(ref);
    if (offset < 0 || length < 0 || offset + length > s.size)
      throw OUT_OF_RANGE(s.name, offset, length, s.size);
    return allocation(this.core, this.core.tables.get(s.table!), offset, length);
  }

  // ---- snapshots ----

  snapshot(
    container: string,
    name: string,
    options: { labels?: Record<string, string> } & MutationOptions = {},
  ): SnapshotInfo {
    return this.core.mutate(() => {
      const c = this.container(container);
      const s = takeSnapshot(this.core, c, checkUserSnapshotName(name), 'user', options.labels ?? {});
      return snapshotInfo(this.core.catalog, s);
    }, options);
  }

  listSnapshots(container?: string, options: { includeHidden?: boolean } = {}): SnapshotInfo[] {
    this.core.assertOpen();
    const { catalog } = this.core;
    const records = container
      ? catalog.snapshotsOf(this.container(container).id, options.includeHidden)
      : [...catalog.snapshots.values()].filter((s) => options.includeHidden || !s.hidden);
    return records.sort((a, b) => a.id - b.id).map((s) => snapshotInfo(catalog, s));
  }

  describeSnapshot(ref: SnapshotSelector): SnapshotInfo {
    this.core.assertOpen();
    return snapshotInfo(this.core.catalog, findSnapshot(this.core, ref));
  }

  deleteSnapshot(ref: SnapshotSelector, options: MutationOptions = {}): void {
    this.core.mutate(() => {
      const s = findSnapshot(this.core, ref);
      if (s.vmSnapshot !== null) {
        throw INVALID_ARGUMENT(`"${s.name}" is part of a VM snapshot; delete the VM's snapshot instead`, {
          argument: 'snapshot',
        });
      }
      deleteSnapshot(this.core, s);
    }, options);
  }

  /**
   * Runs engine operations and rolls them back (EngineCore.rehearse): throws
   * what they would refuse, changes nothing. False: no verdict.
   */
  rehearse(fn: () => void): boolean {
    return this.core.rehearse(fn);
  }

  // ---- sync, clone, revert, flatten ----

  sync<Report = unknown>(
    target: string,
    source: SnapshotSelector,
    options: {
      safetySnapshot?: boolean;
      members?: string[];
      hooks?: SyncHooks<unknown, Report>;
    } & MutationOptions = {},
  ): SyncResult<Report> & { metadataEntries: number } {
    return this.core.mutate(
      (): SyncResult<Report> & { metadataEntries: number } => ({
        ...syncContainer(this.core, this.container(target), findSnapshot(this.core, source), options),
        metadataEntries: 0,
      }),
      options,
      (result, entries) => ({ ...result, metadataEntries: entries }),
    );
  }

  /**
   * With `hooks` (the identity hooks) the clone gets an identity of its own (clone-identity.ts), reported
   * in `identity`; without, it is the snapshot's exact copy (identity null).
   */
  clone<Report = unknown>(
    source: SnapshotSelector,
    name: string,
    options: { labels?: Record<string, string>; hooks?: SyncHooks<unknown, Report> } & MutationOptions = {},
  ): ContainerInfo & { identity: Report | null } {
    const cloned = () => {
      const snapshot = findSnapshot(this.core, source);
      const made = cloneSnapshot(this.core, snapshot, name, options.labels);
      const identity = options.hooks ? giveCloneIdentity(this.core, made, snapshot, options.hooks) : null;
      return { ...this.info_(this.core.catalog.container(made.id)), identity };
    };
    return this.core.mutate(() => this.provisioning(cloned), options);
  }

  revert(container: string, snapshot: SnapshotSelector, options: MutationOptions = {}): ContainerInfo {
    return this.core.mutate(() => {
      const c = this.container(container);
      const s =
        typeof snapshot === 'string' && !snapshot.includes('@') ? `${container}@${snapshot}` : snapshot;
      return this.info_(revertContainer(this.core, c, findSnapshot(this.core, s)));
    }, options);
  }

  async flatten(container: string, options: { onProgress?: Progress } = {}): Promise<ContainerInfo> {
    await flattenContainer(this.core, this.container(container), options.onProgress);
    return this.describe(container);
  }

  // ---- attached clients (NBD sessions bind to identities, never to names) ----

  /**
   * The name of container `id` while it is still the one a client attached
   * to: same uuid, same generation (no sync, revert or clone gave it a new
   * base) and same size. Null once it was deleted, re-synced, reverted or
   * resized: the client's requests must then reach nothing.
   */
  attachedContainer(id: number, uuid: string, generation: number, size: number): string | null {
    this.core.assertOpen();
    const c = this.core.catalog.containers.get(id);
    // A disk an import is rewriting (importUndo) is nobody's until the import completes or is undone.
    return c !== undefined &&
      c.importUndo === undefined &&
      c.uuid === uuid &&
      c.generation === generation &&
      c.size === size
      ? c.name
      : null;
  }

  /**
   * Pins the visible data snapshot `uuid` for a reader (an NBD session): the
   * pin reads it by its table, also once it is deleted (then hidden, its
   * name free again), until `release()`; the last release of a deleted
   * snapshot frees it. NOT_FOUND if there is no such visible snapshot.
   */
  pinSnapshot(uuid: string): SnapshotPin {
    return pinSnapshot(this.core, uuid);
  }

  // ---- inspection ----

  /** The container's chain, from its current table down to the root. */
  lineage(container: string): LineageEntry[] {
    const c = this.dataContainer(container);
    const out: LineageEntry[] = [];
    for (
      let t = this.core.tables.get(c.table!) as ReturnType<TableRegistry['get']> | null;
      t !== null;
      t = t.parent
    ) {
      const snapshot = t.owner.kind === 'snapshot' ? this.core.catalog.snapshots.get(t.owner.id) : undefined;
      out.push({
        table: t.id,
        snapshot: snapshot ? snapshotInfo(this.core.catalog, snapshot) : null,
        kind: t.frozen ? 'snapshot' : 'current',
      });
    }
    return out;
  }

  usage(container: string): Usage {
    this.core.assertOpen();
    return containerUsage(this.core, this.container(container));
  }

  /**
   * Raises the pool's capacity (grow.ts): to `capacityBytes`, or to the whole of its named file or
   * device (after an LVM volume was extended). Never shrinks; a capacity it already has is a no-op.
   */
  grow(options: GrowOptions = {}, mutation: MutationOptions = {}): PoolInfo {
    this.core.assertOpen();
    return growPool(this.core, grownCapacity(this.core, options), () => this.info(), mutation);
  }

  fsck(options: { onProgress?: Progress } = {}): Promise<FsckReport> {
    this.core.assertOpen();
    // Commit what is staged so it is checked too; fsck itself only reads, and checks the committed state if a full host refuses the commit.
    try {
      this.core.commit();
    } catch (err) {
      if (!isSnapsyncError(err, 'OUT_OF_SPACE')) throw err;
    }
    // The marks before the metadata fsck reads: a stamp follows its commit (data-marks.ts).
    const marks = readDataMarks(this.dataPaths, this.core.record.uuid);
    return fsck(this.core, options.onProgress, dataFileSizes(this.dataPaths), marks);
  }

  /** Frees every discarded table's blocks now (normally done in the background). */
  reclaim(): number {
    this.core.assertOpen();
    return reclaimAll(this.core);
  }

  /** Deletes expired idempotency records (at open; returns how many). */
  pruneIdempotency(now = Date.now()): number {
    const expired: StoreOp[] = [];
    for (const { key, value } of this.core.store.entries<string, IdempotencyRecord>(DB.idempotency)) {
      if (!(value?.expiresAt > now)) expired.push({ db: DB.idempotency, key, value: undefined });
    }
    if (expired.length > 0) this.core.store.commit(expired);
    return expired.length;
  }

  /**
   * Records the result of an operation that ran in several commits (flatten,
   * an import) under its idempotency key, in a commit of its own: a crash
   * before it leaves no record, and the retry runs again.
   */
  recordIdempotent<T>(result: T, options: MutationOptions): T {
    return options.idempotency ? this.core.mutate(() => result, options) : result;
  }

  /** The stored result of an earlier mutation under this idempotency key, unless expired. */
  idempotent(key: string): IdempotencyRecord | undefined {
    this.core.assertOpen();
    const record = this.core.store.get<IdempotencyRecord>(DB.idempotency, key);
    return record && record.expiresAt > Date.now() ? record : undefined;
  }

  // ---- helpers ----

  private container(name: string): ContainerRecord {
    this.core.assertOpen();
    if (typeof name !== 'string')
      throw INVALID_ARGUMENT('container name must be a string', { argument: 'container' });
    return this.core.catalog.containerByName(name);
  }

  private dataContainer(name: string): ContainerRecord {
    const c = this.container(name);
    if (c.type === 'vm')
      throw TYPE_MISMATCH(`"${name}" is a VM: read and write its members`, { container: name });
    return c;
  }

  private dataSnapshot(ref: SnapshotSelector) {
    this.core.assertOpen();
    const s = findSnapshot(this.core, ref);
    if (s.table === null)
      throw TYPE_MISMATCH(`snapshot "${s.name}" is a VM snapshot: read its members`, { snapshot: s.name });
    return s;
  }

  /** The container's current table when asked (after the request waited for its blocks), `check` first. */
  private currentTable(c: ContainerRecord, check?: () => void) {
    const { id } = c;
    return () => {
      this.core.assertOpen();
      check?.();
      const now = this.core.catalog.containers.get(id);
      if (now === undefined || now.table === null) throw NOT_FOUND('container', c.name);
      return this.core.tables.get(now.table);
    };
  }

  private checkIo(c: ContainerRecord, offset: number, length: number): void {
    checkRange(offset, length);
    if (offset + length > c.size) throw OUT_OF_RANGE(c.name, offset, length, c.size);
  }

  private info_(c: ContainerRecord): ContainerInfo {
    return containerInfo(this.core.catalog, this.core.tables, c);
  }
}

/** fsync of a directory: the entries made in it so far survive a crash. */
function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The data files' marks must not contradict the metadata (data-marks.ts, which fsck reports the
 * same from): another pool's file, or metadata older than its data, is refused before anything
 * reads them. Then each file is marked as this pool's (an unmarked one: a pool made before the
 * mark, where the filesystem keeps it) and stamped after every commit from now on.
 */
function checkDataMarks(store: MetadataStore, paths: string[], uuid: string): void {
  const marks = refuseContradictingMarks(paths, uuid, store.generation);
  const files = marks.map((m) => m.path);
  for (const m of marks) if (m.owner === null) markDataOwner(m.path, uuid);
  const stamp = (generation: number) => {
    for (const file of files) stampDataGeneration(file, uuid, generation);
  };
  stamp(store.generation);
  store.onCommitted = stamp;
}
