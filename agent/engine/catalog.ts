/**
 * The catalog: container and snapshot records, their name indexes, and id
 * sequences. Records are immutable values: a change replaces the record, so
 * undo is "put the old one back".
 */
import { CORRUPT, NOT_FOUND } from './errors';
import { DB, META_SEQ } from './store/keys';
import type { MetadataStore } from './store/metadata-store';
import type { ContainerRecord, SequenceRecord, SnapshotRecord } from './store/records';
import type { WriteBatch } from './write-batch';

const snapshotNameKey = (container: number, name: string) => `${container}\u0000${name}`;

export class Catalog {
  readonly containers = new Map<number, ContainerRecord>();
  readonly containerIds = new Map<string, number>();
  readonly snapshots = new Map<number, SnapshotRecord>();
  private readonly snapshotIds = new Map<string, number>();
  private seq: SequenceRecord = { v: 1, container: 0, snapshot: 0, table: 0 };

  load(store: MetadataStore): void {
    this.seq = store.get<SequenceRecord>(DB.meta, META_SEQ) ?? this.seq;
    for (const { key, value } of store.entries<number, ContainerRecord>(DB.containers)) {
      if (value?.v !== 1) throw CORRUPT(`container ${key} has an unknown record version`, { container: key });
      this.containers.set(key, value);
      this.containerIds.set(value.name, key);
    }
    for (const { key, value } of store.entries<number, SnapshotRecord>(DB.snapshots)) {
      if (value?.v !== 1) throw CORRUPT(`snapshot ${key} has an unknown record version`, { snapshot: key });
      this.snapshots.set(key, value);
      if (!value.hidden) this.snapshotIds.set(snapshotNameKey(value.container, value.name), key);
    }
  }

  nextId(batch: WriteBatch, kind: 'container' | 'snapshot' | 'table'): number {
    this.seq = { ...this.seq, [kind]: this.seq[kind] + 1 };
    batch.put(DB.meta, META_SEQ, this.seq);
    return this.seq[kind];
  }

  /** A container by name; one an import is still creating (incomplete) is not found. */
  containerByName(name: string): ContainerRecord {
    const id = this.containerIds.get(name);
    const record = id === undefined ? undefined : this.containers.get(id);
    if (record === undefined || record.incomplete) throw NOT_FOUND('container', name);
    return record;
  }

  container(id: number): ContainerRecord {
    const record = this.containers.get(id);
    if (record === undefined) throw CORRUPT(`container ${id} is missing`, { container: id });
    return record;
  }

  snapshot(id: number): SnapshotRecord {
    const record = this.snapshots.get(id);
    if (record === undefined) throw CORRUPT(`snapshot ${id} is missing`, { snapshot: id });
    return record;
  }

  /** A visible snapshot of a container by name. */
  snapshotByName(container: ContainerRecord, name: string): SnapshotRecord {
    const id = this.snapshotIds.get(snapshotNameKey(container.id, name));
    if (id === undefined) throw NOT_FOUND('snapshot', `${container.name}@${name}`);
    return this.snapshots.get(id)!;
  }

  hasSnapshotName(container: number, name: string): boolean {
    return this.snapshotIds.has(snapshotNameKey(container, name));
  }

  snapshotsOf(container: number, includeHidden = false): SnapshotRecord[] {
    return [...this.snapshots.values()].filter(
      (s) => s.container === container && (includeHidden || !s.hidden),
    );
  }

  putContainer(batch: WriteBatch, record: ContainerRecord): void {
    const before = this.containers.get(record.id);
    this.containers.set(record.id, record);
    if (before && before.name !== record.name) this.containerIds.delete(before.name);
    this.containerIds.set(record.name, record.id);
    batch.onAbort(() => {
      this.containerIds.delete(record.name);
      if (before) {
        this.containers.set(before.id, before);
        this.containerIds.set(before.name, before.id);
      } else this.containers.delete(record.id);
    });
    batch.put(DB.containers, record.id, record);
    if (!before || before.name !== record.name) {
      if (before) batch.remove(DB.names, before.name);
      batch.put(DB.names, record.name, record.id);
    }
  }

  removeContainer(batch: WriteBatch, record: ContainerRecord): void {
    this.containers.delete(record.id);
    this.containerIds.delete(record.name);
    batch.onAbort(() => {
      this.containers.set(record.id, record);
      this.containerIds.set(record.name, record.id);
    });
    batch.remove(DB.containers, record.id);
    batch.remove(DB.names, record.name);
  }

  putSnapshot(batch: WriteBatch, record: SnapshotRecord): void {
    const before = this.snapshots.get(record.id);
    const key = snapshotNameKey(record.container, record.name);
    this.snapshots.set(record.id, record);
    if (record.hidden) this.snapshotIds.delete(key);
    else this.snapshotIds.set(key, record.id);
    batch.onAbort(() => {
      if (before) {
        this.snapshots.set(before.id, before);
        if (before.hidden) this.snapshotIds.delete(key);
        else this.snapshotIds.set(key, before.id);
      } else {
        this.snapshots.delete(record.id);
        this.snapshotIds.delete(key);
      }
    });
    batch.put(DB.snapshots, record.id, record);
    // Hidden snapshots free their name for reuse (e.g. a rotated nightly name).
    if (record.hidden) batch.remove(DB.snapshotNames, [record.container, record.name]);
    else batch.put(DB.snapshotNames, [record.container, record.name], record.id);
  }

  removeSnapshot(batch: WriteBatch, record: SnapshotRecord): void {
    const key = snapshotNameKey(record.container, record.name);
    const indexed = this.snapshotIds.get(key) === record.id;
    this.snapshots.delete(record.id);
    if (indexed) this.snapshotIds.delete(key);
    batch.onAbort(() => {
      this.snapshots.set(record.id, record);
      if (indexed) this.snapshotIds.set(key, record.id);
    });
    batch.remove(DB.snapshots, record.id);
    if (indexed) batch.remove(DB.snapshotNames, [record.container, record.name]);
  }
}
