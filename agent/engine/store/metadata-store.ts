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
import { type Database, type Key, open, type RootDatabase } from 'lmdb';
import { HOST_OUT_OF_SPACE, IO_ERROR } from '../errors';
import { DB, type DbName } from './keys';

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
  readonly mapDb: Database<number, [number, number]>;
  readonly presenceDb: Database<Buffer, [number, number]>;
  /**
   * Called when a commit finds the host filesystem full; returns true if it
   * made room (released the metadata reserve), and the commit is tried again.
   */
  onNoSpace: (() => boolean) | null = null;

  /** Record databases (msgpack) whose values a read-only store reads one by one, so an undecodable one reads as missing. */
  private readonly tolerant = new Set<DbName>();

  private constructor(
    path: string,
    readonly readOnly = false,
  ) {
    this.root = open({ path, maxDbs: 16, compression: false, overlappingSync: false, readOnly });
    for (const name of Object.values(DB)) {
      const encoding = name === DB.map ? 'ordered-binary' : name === DB.presence ? 'binary' : 'msgpack';
      this.dbs.set(name, this.root.openDB({ name, encoding, keyEncoding: 'ordered-binary' }));
      if (readOnly && encoding === 'msgpack') this.tolerant.add(name);
    }
    this.mapDb = this.dbs.get(DB.map) as unknown as Database<number, [number, number]>;
    this.presenceDb = this.dbs.get(DB.presence) as unknown as Database<Buffer, [number, number]>;
  }

  /** Opens (creating if needed) the store in `path` (a directory). */
  static open(path: string): MetadataStore {
    try {
      return new MetadataStore(path);
    } catch (err) {
      throw IO_ERROR('open metadata store', err, { path });
    }
  }

  /**
   * Opens the store in `path` read-only, for checking a pool no agent could
   * open (or one an agent has open: LMDB readers see one committed state).
   * A record that cannot be decoded reads as missing instead of throwing.
   */
  static openReadOnly(path: string): MetadataStore {
    try {
      return new MetadataStore(path, true);
    } catch (err) {
      throw IO_ERROR('open metadata store read-only', err, { path });
    }
  }

  db<V = unknown, K extends Key = Key>(name: DbName): Database<V, K> {
    return this.dbs.get(name) as unknown as Database<V, K>;
  }

  get<V>(name: DbName, key: Key, transaction?: ReadTransaction): V | undefined {
    const options = transaction ? { transaction } : undefined;
    if (!this.tolerant.has(name)) return this.db<V>(name).get(key, options) as V | undefined;
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
    if (this.tolerant.has(name)) {
      for (const key of this.db<V, K>(name).getKeys(options))
        yield { key: key as K, value: this.get<V>(name, key, transaction) as V };
      return;
    }
    for (const entry of this.db<V, K>(name).getRange(options)) yield entry as { key: K; value: V };
  }

  /**
   * Applies every op in one write transaction. Throws OUT_OF_SPACE if the host
   * filesystem is full even after `onNoSpace` made what room it could, and
   * IO_ERROR if LMDB refuses otherwise (nothing is applied then).
   */
  commit(ops: Iterable<StoreOp>): void {
    const all = [...ops];
    try {
      this.apply(all);
    } catch (err) {
      if (!isNoSpace(err)) throw IO_ERROR('metadata commit', err);
      if (!this.onNoSpace?.()) throw HOST_OUT_OF_SPACE('metadata commit', err);
      try {
        this.apply(all);
      } catch (again) {
        if (isNoSpace(again)) throw HOST_OUT_OF_SPACE('metadata commit', again);
        throw IO_ERROR('metadata commit', again);
      }
    }
  }

  private apply(ops: StoreOp[]): void {
    this.root.transactionSync(() => {
      for (const op of ops) {
        const db = this.dbs.get(op.db)!;
        if (op.value === undefined) db.removeSync(op.key);
        else db.putSync(op.key, op.value);
      }
    });
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
}

/** LMDB reports a full filesystem as errno 28 (ENOSPC) in `code`. */
function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 28 || code === 'ENOSPC' || /No space left on device/.test(String((err as Error)?.message));
}
