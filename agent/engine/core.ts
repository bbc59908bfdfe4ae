/**
 * The engine core: owns the store, the device, the lock and the in-memory
 * state, and is the only place that commits. Operation modules (containers,
 * snapshots, sync, …) work through it.
 *
 * Commit order: data fdatasync → one metadata transaction (records, map
 * groups, presence chunks, space map) → then freed blocks become allocatable.
 * `mutate` runs a metadata operation as one transaction: acknowledged writes
 * are committed first, so a failure rolls back the operation and nothing else.
 * `rehearse` runs operations the same way and always rolls them back: what
 * they would refuse, learned before a step that cannot be undone.
 */
import type { IoContext } from './block-io';
import type { Catalog } from './catalog';
import { DamagedPointers } from './damaged-pointer';
import { CLOSED } from './errors';
import { IoTracker } from './io-tracker';
import type { SpaceMap } from './space-map';
import type { BlockDevice } from './store/block-device';
import { DB } from './store/keys';
import type { MetadataStore, StoreOp } from './store/metadata-store';
import type { PoolLock } from './store/pool-lock';
import type { IdempotencyRecord, PoolRecord } from './store/records';
import type { TableRegistry } from './tables';
import { WriteBatch } from './write-batch';

export interface IdempotencyOptions {
  key: string;
  fingerprint: string;
  expiresAt: number;
}

export interface MutationOptions {
  /** Stored with the operation's result in the same commit (crash-atomic). */
  idempotency?: IdempotencyOptions;
}

/**
 * Staged entries above which acknowledged writes are committed without
 * waiting for a flush: in the background, the data synced off the event loop
 * first, as a flush does (an fdatasync with gigabytes dirty takes seconds,
 * and on the event loop every client and the API would wait for it).
 */
const AUTO_COMMIT_ENTRIES = 65536;
/** Times the threshold above which the commit is made at once (writes outran the background one): the batch stays bounded. */
const FORCED_COMMIT_FACTOR = 4;

/**
 * At most this long between an acknowledged write and the background commit of its map entry,
 * however few are staged (ext4's default commit interval). A client that never flushes (nbdcopy
 * without --flush, dd without conv=fsync) then loses at most the last few seconds of writes to an
 * agent crash, not everything it ever wrote: its data is in the page cache, which survives the
 * process, but a map entry not committed points nowhere after a restart.
 */
export const DEFAULT_COMMIT_INTERVAL_MS = 5000;

/** Thrown by `commit` during a rehearsal: the rehearsed operation would have committed part way. */
class RehearsalCommit extends Error {}

export class EngineCore implements IoContext {
  readonly batch = new WriteBatch();
  readonly io = new IoTracker();
  readonly damaged = new DamagedPointers();
  readonly blockSize: number;
  closed = false;
  private reclaimScheduled = false;
  /** True while `rehearse` runs: mutations stage and are rolled back; nothing commits. */
  private rehearsing = false;
  /** Set by the pool: frees garbage tables a step at a time. */
  reclaimStep: (() => boolean) | null = null;
  onBackgroundError: (err: unknown) => void = () => {};

  constructor(
    readonly dir: string,
    readonly record: PoolRecord,
    readonly store: MetadataStore,
    readonly device: BlockDevice,
    readonly lock: PoolLock,
    readonly space: SpaceMap,
    readonly tables: TableRegistry,
    readonly catalog: Catalog,
  ) {
    this.blockSize = record.blockSize;
    device.onFaultsChanged = () => tables.events.reset();
  }

  assertOpen(): void {
    if (this.closed) throw CLOSED();
  }

  /**
   * The error of the last commit that failed, and when, until one succeeds: a pool that cannot
   * make writes durable (a read-only or failing disk, a full host, LMDB ended by a failed meta
   * write) is unhealthy though it still reads (the agent's /healthz says so).
   */
  commitFailure: { error: unknown; since: Date } | null = null;

  /** Commits everything staged. Throws IO_ERROR (then nothing of it is committed and it stays staged). */
  commit(): void {
    if (this.rehearsing) throw new RehearsalCommit('commit during a rehearsal');
    const batch = this.batch;
    // Blocks of writes still on the threadpool are recorded as free: no map entry points at them yet.
    const unwritten = [...this.io.unwritten].flat();
    this.space.giveBack(unwritten);
    try {
      const spaceOps = this.space.dirtyOps();
      if (batch.isEmpty && spaceOps.length === 0) return;
      this.device.syncData();
      const ops: StoreOp[] = [...batch.recordOps(), ...this.tables.presenceOps(batch)];
      ops.push(...spaceOps);
      const release = this.space.planRelease(batch.released);
      ops.push(...release.ops);
      // Map groups merge staged entries into committed records, read inside the commit's own transaction.
      this.store.commit(ops, () => this.tables.blocks.write(batch.mapOps));
      this.space.committed();
      release.apply();
      // Freed blocks may be handed out from now on: no outside reader may keep an address of one.
      if (batch.released.length > 0) this.tables.events.reset();
      batch.clear();
      this.commitFailure = null;
    } catch (err) {
      this.commitFailure = { error: err, since: this.commitFailure?.since ?? new Date() };
      throw err;
    } finally {
      this.space.retake(unwritten);
    }
  }

  /** Test seam: staged entries that start a background commit (AUTO_COMMIT_ENTRIES). */
  autoCommitEntries = AUTO_COMMIT_ENTRIES;
  /** Longest wait before staged writes are committed without a flush (DEFAULT_COMMIT_INTERVAL_MS); 0: only by count. */
  commitIntervalMs = DEFAULT_COMMIT_INTERVAL_MS;
  /** The background commit under way, if any (`afterWrite`); `close` waits for it. */
  autoCommit: Promise<void> | null = null;
  /** Set while staged writes wait for the interval's commit. */
  private commitTimer: NodeJS.Timeout | null = null;

  /** Called after each acknowledged write: keeps the staged batch bounded, in size and in age. */
  afterWrite(): void {
    if (this.batch.mapOps.size === 0) return;
    const entries = this.batch.entryCount;
    if (entries > FORCED_COMMIT_FACTOR * this.autoCommitEntries) this.commit();
    else if (entries > this.autoCommitEntries) this.commitInBackground(false);
    else if (this.commitTimer === null && this.commitIntervalMs > 0) {
      this.commitTimer = setTimeout(() => {
        this.commitTimer = null;
        // A count-based commit under way may leave what came after it staged: ask again once it is done.
        if (this.autoCommit !== null) void this.autoCommit.then(() => this.afterWrite());
        else this.commitInBackground(true);
      }, this.commitIntervalMs);
      // The agent's servers keep it running; a script's pool must not be kept open by this.
      this.commitTimer.unref();
    }
  }

  /** Stops the interval's commit (close: the last commit is the caller's). */
  stopCommitTimer(): void {
    if (this.commitTimer !== null) clearTimeout(this.commitTimer);
    this.commitTimer = null;
  }

  /**
   * The data synced on the threadpool, then the commit (whose own data sync covers only what came
   * meanwhile): of whatever is staged when `anyStaged` (the interval), else only while more than
   * autoCommitEntries are.
   */
  private commitInBackground(anyStaged: boolean): void {
    if (this.autoCommit !== null) return;
    this.autoCommit = this.device
      .syncDataAsync()
      .then(() => {
        // Synchronous operations (mutate, rehearse) cannot be under way here; a flush may have committed.
        if (this.closed || this.rehearsing || this.batch.mapOps.size === 0) return;
        if (anyStaged || this.batch.entryCount > this.autoCommitEntries) this.commit();
      })
      .catch((err: unknown) => this.onBackgroundError(err))
      .finally(() => {
        this.autoCommit = null;
      });
  }

  /** Store entries the next commit would write (what `commit` counts, before it runs). */
  pendingEntries(): number {
    return (
      this.batch.entryCount +
      this.space.dirtyOps().length +
      this.space.planRelease(this.batch.released).ops.length
    );
  }

  /**
   * Runs `fn` as one all-or-nothing metadata transaction. `finalize` may
   * complete the result with what the transaction writes (before its
   * idempotency record, so a replay returns exactly the same result).
   */
  mutate<T>(fn: () => T, options: MutationOptions = {}, finalize?: (result: T, entries: number) => T): T {
    this.assertOpen();
    if (this.rehearsing) {
      // Inside `rehearse`: its transaction, rolled back there; no idempotency record.
      const result = fn();
      return finalize ? finalize(result, this.pendingEntries()) : result;
    }
    if (!this.batch.isEmpty) this.commit();
    this.batch.transactional = true;
    try {
      let result = fn();
      if (finalize) result = finalize(result, this.pendingEntries());
      const idem = options.idempotency;
      if (idem) {
        const record: IdempotencyRecord = {
          v: 1,
          fingerprint: idem.fingerprint,
          result: JSON.parse(JSON.stringify(result ?? null)),
          expiresAt: idem.expiresAt,
        };
        this.batch.put(DB.idempotency, idem.key, record);
      }
      this.commit();
      return result;
    } catch (err) {
      this.abort();
      throw err;
    } finally {
      this.batch.transactional = false;
      // A metadata operation may end sessions (generations, sizes) without touching a chain.
      this.tables.events.reset();
    }
  }

  /**
   * Runs `fn` (engine operations) as one transaction and rolls it back
   * whatever happens: throws what they would throw, changes nothing (memory
   * is left exactly as the store has it, the blocks they took are given
   * back). For the checks an operation makes, run before a step outside the
   * engine that cannot be undone (disconnecting a VM for a forced sync).
   * False: no verdict (the operation would have committed part way, which a
   * rehearsal cannot do). Costs what the operations cost; synchronous, so no
   * NBD request runs meanwhile.
   */
  rehearse(fn: () => void): boolean {
    this.assertOpen();
    if (this.rehearsing) throw new Error('rehearsals do not nest');
    if (!this.batch.isEmpty) this.commit();
    this.rehearsing = true;
    this.batch.transactional = true;
    // Data may go only into blocks the rehearsal took (rolled back with it), never over kept data.
    this.device.writeGuard = (block, count) => {
      if (!this.takenSinceCommit(block, count)) throw new RehearsalCommit('a data write over kept blocks');
    };
    try {
      fn();
      return true;
    } catch (err) {
      if (err instanceof RehearsalCommit) return false;
      throw err;
    } finally {
      this.device.writeGuard = null;
      this.abort();
      this.batch.transactional = false;
      this.rehearsing = false;
    }
  }

  /** Whether blocks [block, block + count) were all taken since the last commit (staged, or being written). */
  private takenSinceCommit(block: number, count: number): boolean {
    const runs = [this.batch.allocated, ...this.io.unwritten].flat();
    for (let b = block; b < block + count; b++)
      if (!runs.some((r) => b >= r.start && b < r.start + r.count)) return false;
    return true;
  }

  private abort(): void {
    this.batch.rollback();
    this.space.giveBack(this.batch.allocated);
    this.batch.clear();
    // Entries outside readers were given may have pointed at what was rolled back.
    this.tables.events.reset();
  }

  /** Starts the background reclaimer if it is not running. */
  scheduleReclaim(): void {
    if (this.reclaimScheduled || this.closed || this.reclaimStep === null) return;
    this.reclaimScheduled = true;
    const step = () => {
      if (this.closed) return;
      try {
        if (this.reclaimStep!()) {
          setImmediate(step);
          return;
        }
      } catch (err) {
        this.onBackgroundError(err);
      }
      this.reclaimScheduled = false;
    };
    setImmediate(step);
  }
}
