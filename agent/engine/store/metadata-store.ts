/**
 * The metadata store: one LMDB environment with a named database per record kind.
 *
 * Contract: reads are synchronous and see the last committed state; `commit`
 * applies a whole batch atomically (all or nothing) and is on stable storage
 * when it returns, so the caller may reuse blocks the commit freed;
 * `durable()` resolves once everything committed is on stable storage.
 * Cost: a get is one B-tree lookup in a memory map; a commit is one LMDB write
 * transaction and its fsync (lmdb's overlappingSync is off: with it, a commit
 * returns before its sync, and a block it freed could be rewritten while the
 * metadata on disk still points at it).
 */
import { existsSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Database, type Key, open, type RootDatabase } from 'lmdb';
import { HOST_OUT_OF_SPACE, IO_ERROR, isSnapsyncError, type SnapsyncError } from '../errors';
import { DB, type DbName, META_GENERATION } from './keys';
import { lmdbCorruption } from './lmdb-corruption';
import { checkMetadataFile } from './metadata-file-check';
import { undecodableRecord } from './undecodable-record';

/** Databases whose values are raw bytes (presence bitmaps, format-2 map groups). */
const binaryValues = new Set<DbName>([DB.presence, DB.mapGroups, DB.mapMasks]);

export interface StoreOp {
  db: DbName;
  key: Key;
  /** undefined removes the key. */
  value: unknown;
}

export type ReadTransaction = ReturnType<RootDatabase['useReadTransaction']>;

export class MetadataStore {
  private readonly root: RootDatabase;
  private readonly dbs = new Map<DbName, Database<unknown, Key>>();
  /** The hot-path databases, kept as fields to skip a Map lookup per block. */
  readonly mapGroupsDb: Database<Buffer, Buffer>;
  readonly mapMasksDb: Database<Buffer, Buffer>;
  readonly presenceDb: Database<Buffer, [number, number]>;
  /**
   * Called when a commit finds the host filesystem full; returns true if it
   * made room (released the metadata reserve), and the commit is tried again.
   */
  onNoSpace: (() => boolean) | null = null;
  /**
   * The number of write transactions committed so far, stored with each one (META_GENERATION;
   * 0 before the first, or in a pool from before it was counted).
   */
  generation: number;
  /** Called after each commit, once it is on stable storage, with its generation (the pool stamps its data files). */
  onCommitted: ((generation: number) => void) | null = null;

  /** Record databases (msgpack) whose values a read-only store reads one by one, so an undecodable one reads as missing. */
  private readonly tolerant = new Set<DbName>();
  /** Record databases (msgpack): a value there may fail to decode, which is CORRUPT naming the record. */
  private readonly decoded = new Set<DbName>();
  /** The LMDB file, for naming it when LMDB says it is damaged. */
  private readonly file: string;

  private constructor(
    path: string,
    readonly readOnly = false,
  ) {
    this.file = join(path, 'data.mdb');
    this.root = open({ path, maxDbs: 16, compression: false, overlappingSync: false, readOnly });
    for (const name of Object.values(DB)) {
      const encoding = name === DB.map ? 'ordered-binary' : binaryValues.has(name) ? 'binary' : 'msgpack';
      const keyEncoding = name === DB.mapGroups || name === DB.mapMasks ? 'binary' : 'ordered-binary';
      const db = this.root.openDB({ name, encoding, keyEncoding });
      // Read-only, a database the pool's format never created (format 1 has no map-groups) is absent: reads find nothing.
      if (db) this.dbs.set(name, db);
      if (encoding === 'msgpack') this.decoded.add(name);
      if (readOnly && encoding === 'msgpack') this.tolerant.add(name);
    }
    this.mapGroupsDb = this.dbs.get(DB.mapGroups) as unknown as Database<Buffer, Buffer>;
    this.mapMasksDb = this.dbs.get(DB.mapMasks) as unknown as Database<Buffer, Buffer>;
    this.presenceDb = this.dbs.get(DB.presence) as unknown as Database<Buffer, [number, number]>;
    this.generation = this.get<number>(DB.meta, META_GENERATION) ?? 0;
  }

  /** Opens (creating if needed) the store in `path` (a directory). CORRUPT if its file is damaged. */
  static open(path: string): MetadataStore {
    MetadataStore.checkFile(path);
    try {
      return new MetadataStore(path);
    } catch (err) {
      throw (
        lmdbCorruption(err, join(path, 'data.mdb')) ??
        IO_ERROR(`open metadata store ${join(path, 'data.mdb')}`, err, { path, file: join(path, 'data.mdb') })
      );
    }
  }

  /**
   * Opens the store in `path` read-only, for checking a pool no agent could
   * open (or one an agent has open: LMDB readers see one committed state).
   * A record that cannot be decoded reads as missing instead of throwing.
   */
  static openReadOnly(path: string): MetadataStore {
    MetadataStore.checkFile(path);
    try {
      return new MetadataStore(path, true);
    } catch (err) {
      throw (
        lmdbCorruption(err, join(path, 'data.mdb')) ??
        IO_ERROR(`open metadata store ${join(path, 'data.mdb')} read-only`, err, { path })
      );
    }
  }

  /** A damaged file must never reach LMDB (see metadata-file-check.ts); a missing one is a store to create. */
  private static checkFile(path: string): void {
    const file = join(path, 'data.mdb');
    if (existsSync(file)) checkMetadataFile(file);
  }

  db<V = unknown, K extends Key = Key>(name: DbName): Database<V, K> {
    return this.dbs.get(name) as unknown as Database<V, K>;
  }

  get<V>(name: DbName, key: Key, transaction?: ReadTransaction): V | undefined {
    const options = transaction ? { transaction } : undefined;
    if (!this.dbs.has(name)) return undefined;
    if (!this.tolerant.has(name)) {
      try {
        return this.db<V>(name).get(key, options) as V | undefined;
      } catch (err) {
        throw this.readFailure(name, key, err);
      }
    }
    try {
      return this.db<V>(name).get(key, options) as V | undefined;
    } catch {
      return undefined; // undecodable: the checker reports the record as invalid or missing
    }
  }

  *entries<K extends Key, V>(
    name: DbName,
    range: { start?: unknown; end?: unknown } = {},
    transaction?: ReadTransaction,
  ): Generator<{ key: K; value: V }> {
    const options: Record<string, unknown> = { ...range };
    if (transaction) options.transaction = transaction;
    if (!this.dbs.has(name)) return;
    if (this.tolerant.has(name)) {
      for (const key of this.db<V, K>(name).getKeys(options))
        yield { key: key as K, value: this.get<V>(name, key, transaction) as V };
      return;
    }
    let last: { key: K } | null = null;
    try {
      for (const entry of this.db<V, K>(name).getRange(options)) {
        last = entry as { key: K };
        yield entry as { key: K; value: V };
      }
    } catch (err) {
      throw this.rangeFailure(name, options, last, err);
    }
  }

  /** A failed read of `key` as CORRUPT when LMDB says its file is damaged or the record does not decode, else as it was. */
  private readFailure(name: DbName, key: Key, err: unknown): unknown {
    if (isSnapsyncError(err)) return err;
    const damaged = lmdbCorruption(err, this.file);
    if (damaged) return damaged;
    if (!this.decoded.has(name)) return err;
    let raw: Buffer | undefined;
    try {
      raw = this.db(name).getBinary(key);
    } catch {
      return err;
    }
    // LMDB gives the bytes: what failed is decoding them.
    return raw === undefined ? err : undecodableRecord(this.file, name, key, err);
  }

  /** A failed scan as `readFailure` of the first record after the last one read that does not decode. */
  private rangeFailure(
    name: DbName,
    options: Record<string, unknown>,
    last: { key: Key } | null,
    err: unknown,
  ): unknown {
    if (isSnapsyncError(err) || lmdbCorruption(err, this.file) || !this.decoded.has(name))
      return this.readFailure(name, last?.key ?? '', err);
    const from = last === null ? options : { ...options, start: last.key };
    try {
      for (const key of this.db(name).getKeys(from)) {
        if (last !== null && JSON.stringify(key) === JSON.stringify(last.key)) continue;
        try {
          this.get(name, key, options.transaction as ReadTransaction | undefined);
        } catch (again) {
          return again;
        }
      }
    } catch {
      // The keys do not read either: report the first failure as it was.
    }
    return err;
  }

  /** Decodes every record (msgpack) once: CORRUPT naming the first that does not decode. */
  checkRecordsDecode(): void {
    for (const name of this.decoded) for (const _ of this.entries(name));
  }

  /** Number of entries in `name` (0 for a database a read-only store found absent). */
  count(name: DbName, transaction?: ReadTransaction): number {
    return this.dbs.get(name)?.getCount({ transaction } as never) ?? 0;
  }

  /**
   * Applies every op, then runs `alsoInTransaction` (writes that read what
   * they change, e.g. map groups), in one write transaction. Throws OUT_OF_SPACE if the host
   * filesystem is full even after `onNoSpace` made what room it could, and
   * IO_ERROR if LMDB refuses otherwise (nothing is applied then).
   */
  commit(ops: Iterable<StoreOp>, alsoInTransaction?: () => void): void {
    const all = [...ops];
    this.transaction('metadata commit', () => {
      for (const op of all) {
        const db = this.dbs.get(op.db)!;
        if (op.value === undefined) db.removeSync(op.key);
        else db.putSync(op.key, op.value);
      }
      alsoInTransaction?.();
    });
  }

  /**
   * Runs `fn` as one write transaction (reads inside it see its writes; a
   * throw aborts it), with `commit`'s errors: HOST_OUT_OF_SPACE if the host is
   * full even after `onNoSpace`, CORRUPT if LMDB finds its file damaged or its
   * environment unusable (MDB_PANIC), else
   * IO_ERROR for a failure of LMDB's.
   */
  transaction(op: string, fn: () => void): void {
    const generation = this.generation + 1;
    const body = () => {
      fn();
      this.dbs.get(DB.meta)!.putSync(META_GENERATION, generation);
    };
    try {
      this.root.transactionSync(body);
    } catch (err) {
      if (isSnapsyncError(err)) throw err;
      if (!this.isNoSpace(err)) throw this.failure(op, err);
      if (!this.onNoSpace?.()) throw HOST_OUT_OF_SPACE(op, err);
      try {
        this.root.transactionSync(body);
      } catch (again) {
        if (isSnapsyncError(again)) throw again;
        if (this.isNoSpace(again)) throw HOST_OUT_OF_SPACE(op, again);
        throw this.failure(op, again);
      }
    }
    // transactionSync returns once the commit is synced (overlappingSync is off).
    this.generation = generation;
    this.onCommitted?.(generation);
  }

  /** Reads after this see the latest commit, another process's too (a check that read the data files' marks first). */
  renewReadSnapshot(): void {
    this.root.resetReadTxn();
  }

  /** A failed write transaction's error: CORRUPT if LMDB says its file or environment is unusable, else IO_ERROR. */
  private failure(op: string, err: unknown): SnapsyncError {
    return (
      lmdbCorruption(err, this.file) ??
      lmdbCorruption(this.environmentError(), this.file) ??
      IO_ERROR(op, err)
    );
  }

  /**
   * What LMDB says of its environment after a failed commit. lmdb-js ignores a
   * refused start of a write transaction, so every write after MDB_PANIC (a
   * failed write of a meta page) fails as EINVAL; starting a read transaction
   * (a fresh one: the current may have started before) reports the panic itself.
   */
  private environmentError(): unknown {
    try {
      this.root.resetReadTxn();
      this.root.useReadTransaction().done();
      return null;
    } catch (err) {
      return err;
    }
  }

  /** Removes every entry of `name`, inside a `transaction` (a nested one: aborted with it). */
  clear(name: DbName): void {
    this.dbs.get(name)!.clearSync();
  }

  /** Resolves when every commit so far is on stable storage. */
  async durable(): Promise<void> {
    await this.root.flushed;
  }

  readTransaction(): ReadTransaction {
    return this.root.useReadTransaction();
  }

  async close(): Promise<void> {
    await this.root.flushed;
    await this.root.close();
  }

  /**
   * Whether a failed commit found the host filesystem full. LMDB says so with ENOSPC when a write
   * could put down nothing, but a write the filesystem cut short (room for part of it) is EIO to
   * LMDB (mdb_page_flush): an EIO while the filesystem has almost no room left is a full host too.
   * (Seen with a guest filling a tmpfs through NBD: every commit after failed "metadata commit
   * failed: 5" and the reserve was never given back.)
   */
  private isNoSpace(err: unknown): boolean {
    const code = (err as { code?: unknown })?.code;
    if (code === 28 || code === 'ENOSPC' || /No space left on device/.test(String((err as Error)?.message)))
      return true;
    return (code === 5 || code === 'EIO') && hostNearlyFull(dirname(this.file));
  }
}

/** Below this much room for an unprivileged writer, an EIO from a commit is a short write (the host full). */
const NEARLY_FULL_BYTES = 16 * 1024 * 1024;

function hostNearlyFull(dir: string): boolean {
  try {
    const fs = statfsSync(dir);
    return fs.bavail * fs.bsize < NEARLY_FULL_BYTES;
  } catch {
    return false;
  }
}
