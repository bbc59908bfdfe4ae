/**
 * The block map: every table's logical block → physical block entries
 * (0 = explicit zeros), in the layout of the pool's format version.
 *
 * Format 2 and on (what this build writes): DB `map-groups`, one record per table and
 * group of 1024 logical blocks (group-record.ts: 6 bytes per entry while a
 * group is sparse, a bitmap and 4 bytes per entry once it is dense), where
 * format 1 paid a whole B-tree entry per block (~23 bytes before page fill).
 * Format 4 adds DB `map-masks` under the same keys: the sub-block masks of
 * the group's entries that own only part of their block (mask-record.ts).
 * Format 1 (read only, for the migration and fsck): DB `map`, ordered-binary
 * `[table, block]` → number.
 *
 * Cost: `get` is one B-tree lookup and a scan of one record; `write` reads and
 * rewrites each touched group once per commit.
 */
import { CORRUPT } from '../errors';
import {
  decodeGroup,
  encodeGroup,
  GROUP_BLOCKS,
  GROUP_MASK,
  GROUP_SHIFT,
  groupEntryCount,
  groupKey,
  groupLookup,
} from './group-record';
import { DB } from './keys';
import {
  decodeMasks,
  encodeMasks,
  entryMask,
  entryPhysical,
  maskEntryCount,
  maskLookup,
} from './mask-record';
import type { MetadataStore, ReadTransaction } from './metadata-store';

export interface MapEntry {
  table: number;
  block: number;
  physical: number;
  /** The sub-blocks of `physical` the entry owns (sub-block.ts); 0: all of it. */
  mask: number;
}

/** Staged entries of a commit: table → block → entry value (sub-block.ts: physical + mask × 2^32), or null to remove. */
export type MapChanges = Map<number, Map<number, number | null>>;

const lookupKey = Buffer.alloc(8);

/** lmdb's getBinaryFast also takes read options (its typings omit them). */
interface FastGet {
  getBinaryFast(key: Buffer, options?: { transaction: ReadTransaction }): Buffer | undefined;
}

export class BlockMap {
  constructor(
    private readonly store: MetadataStore,
    readonly formatVersion: number,
  ) {}

  /** The committed entry of (table, block), or undefined. */
  get(table: number, block: number, transaction?: ReadTransaction): number | undefined {
    const options = transaction ? { transaction } : undefined;
    if (this.formatVersion === 1) return this.store.db<number>(DB.map).get([table, block], options);
    lookupKey.writeUInt32BE(table, 0);
    lookupKey.writeUInt32BE(block >>> GROUP_SHIFT, 4);
    // The fast buffer is only valid until the next read: decoded here, before returning.
    const record = (this.store.mapGroupsDb as unknown as FastGet).getBinaryFast(lookupKey, options);
    return record === undefined ? undefined : groupLookup(record, block & GROUP_MASK);
  }

  /** The committed sub-block mask of (table, block): 0 when it owns its whole block (or has no entry). */
  getMask(table: number, block: number, transaction?: ReadTransaction): number {
    if (this.formatVersion < 4) return 0;
    lookupKey.writeUInt32BE(table, 0);
    lookupKey.writeUInt32BE(block >>> GROUP_SHIFT, 4);
    const options = transaction ? { transaction } : undefined;
    const record = (this.store.mapMasksDb as unknown as FastGet).getBinaryFast(lookupKey, options);
    return record === undefined || maskEntryCount(record) < 0 ? 0 : maskLookup(record, block & GROUP_MASK);
  }

  /** The groups with sub-block masks, per table: where `getMask` may find one (TableState.maskedGroups). */
  *maskedGroups(transaction?: ReadTransaction): Generator<[table: number, group: number]> {
    if (this.formatVersion < 4) return;
    for (const { key } of this.store.entries<Buffer, Buffer>(DB.mapMasks, {}, transaction))
      if (key.length === 8) yield [key.readUInt32BE(0), key.readUInt32BE(4)];
  }

  /**
   * Every committed mask record (of one table, if given), decoded, in key order; one that does
   * not decode is reported to `onInvalid` and skipped. For fsck and the entries walk.
   */
  *maskRecords(
    table?: number,
    transaction?: ReadTransaction,
    onInvalid?: (table: number, group: number) => void,
  ): Generator<{ table: number; group: number; masks: Map<number, number> }> {
    if (this.formatVersion < 4) return;
    const range = table === undefined ? {} : { start: groupKey(table, 0), end: groupKey(table + 1, 0) };
    for (const { key, value } of this.store.entries<Buffer, Buffer>(DB.mapMasks, range, transaction)) {
      if (key.length !== 8 || maskEntryCount(value) < 0) {
        onInvalid?.(key.length >= 4 ? key.readUInt32BE(0) : -1, key.length === 8 ? key.readUInt32BE(4) : -1);
        continue;
      }
      yield { table: key.readUInt32BE(0), group: key.readUInt32BE(4), masks: new Map(decodeMasks(value)) };
    }
  }

  /**
   * Every committed entry (of one table, if given), in (table, block) order.
   * A format-2 record that does not decode is skipped and reported to
   * `onInvalid` (-1 for what its key does not say).
   */
  *entries(
    table?: number,
    transaction?: ReadTransaction,
    onInvalid?: (table: number, group: number) => void,
  ): Generator<MapEntry> {
    if (this.formatVersion === 1) {
      const range = table === undefined ? {} : { start: [table, 0], end: [table, Number.MAX_SAFE_INTEGER] };
      for (const { key, value } of this.store.entries<[number, number], number>(DB.map, range, transaction))
        yield { table: key[0], block: key[1], physical: value, mask: 0 };
      return;
    }
    const range = table === undefined ? {} : { start: groupKey(table, 0), end: groupKey(table + 1, 0) };
    for (const { key, value } of this.store.entries<Buffer, Buffer>(DB.mapGroups, range, transaction)) {
      if (key.length !== 8 || groupEntryCount(value) < 0) {
        onInvalid?.(key.length >= 4 ? key.readUInt32BE(0) : -1, key.length === 8 ? key.readUInt32BE(4) : -1);
        continue;
      }
      const t = key.readUInt32BE(0);
      const group = key.readUInt32BE(4);
      const base = group * GROUP_BLOCKS;
      // Decoded before yielding: the consumer's own reads may reuse the buffer lmdb handed out.
      const decoded = [...decodeGroup(value)];
      const masks = this.groupMasks(key, transaction);
      for (const [offset, physical] of decoded)
        yield { table: t, block: base + offset, physical, mask: masks?.get(offset) ?? 0 };
    }
  }

  /** The decoded mask record under a group's key, if it has a valid one. */
  private groupMasks(key: Buffer, transaction?: ReadTransaction): Map<number, number> | undefined {
    if (this.formatVersion < 4) return undefined;
    const options = transaction ? { transaction } : undefined;
    const record = (this.store.mapMasksDb as unknown as FastGet).getBinaryFast(key, options);
    return record === undefined || maskEntryCount(record) < 0 ? undefined : new Map(decodeMasks(record));
  }

  /** Records in the map (entries in format 1, groups in format 2): a progress total. */
  recordCount(transaction?: ReadTransaction): number {
    return this.store.count(this.formatVersion === 1 ? DB.map : DB.mapGroups, transaction);
  }

  /**
   * Applies staged changes (table → block → entry value, or null to remove)
   * on top of what is committed, rewriting each touched group (and its mask
   * record) once. Format 2 and on, and only inside a store transaction: the
   * records it merges into are read in that transaction, never from an older
   * read snapshot.
   */
  write(changes: MapChanges): void {
    const db = this.store.mapGroupsDb;
    const masksDb = this.store.mapMasksDb;
    const withMasks = this.formatVersion >= 4;
    const physicals = new Float64Array(GROUP_BLOCKS);
    const masks = new Uint16Array(GROUP_BLOCKS);
    for (const [table, blocks] of changes) {
      const byGroup = new Map<number, Array<[number, number | null]>>();
      for (const [block, value] of blocks) {
        const group = block >>> GROUP_SHIFT;
        let list = byGroup.get(group);
        if (list === undefined) {
          list = [];
          byGroup.set(group, list);
        }
        list.push([block & GROUP_MASK, value]);
      }
      for (const [group, list] of byGroup) {
        const key = groupKey(table, group);
        physicals.fill(-1);
        masks.fill(0);
        let hadMasks = false;
        const committed = db.getBinaryFast(key);
        if (committed !== undefined) {
          // Rewriting a record that does not decode would lose its entries for good: refused (fsck names it).
          if (groupEntryCount(committed) < 0)
            throw CORRUPT(`map group record ${group} of table ${table} is invalid`, { table, group });
          for (const [offset, physical] of decodeGroup(committed)) physicals[offset] = physical;
        }
        const committedMasks = withMasks ? masksDb.getBinaryFast(key) : undefined;
        if (committedMasks !== undefined) {
          if (maskEntryCount(committedMasks) < 0)
            throw CORRUPT(`map mask record ${group} of table ${table} is invalid`, { table, group });
          for (const [offset, mask] of decodeMasks(committedMasks)) masks[offset] = mask;
          hadMasks = true;
        }
        for (const [offset, value] of list) {
          physicals[offset] = value === null ? -1 : entryPhysical(value);
          masks[offset] = value === null ? 0 : entryMask(value);
          if (masks[offset]! > 0 && !withMasks)
            throw CORRUPT(`a sub-block mask cannot be written in pool format ${this.formatVersion}`);
        }
        const record = encodeGroup(physicals);
        if (record === undefined) db.removeSync(key);
        else db.putSync(key, record);
        if (!withMasks) continue;
        const maskRecord = encodeMasks(masks);
        if (maskRecord !== undefined) masksDb.putSync(key, maskRecord);
        else if (hadMasks) masksDb.removeSync(key);
      }
    }
  }
}
