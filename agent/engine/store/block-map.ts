/**
 * The block map: every table's logical block → physical block entries
 * (0 = explicit zeros), in the layout of the pool's format version.
 *
 * Format 2 (what this build writes), DB `map-groups`, one record per table and
 * group of GROUP_BLOCKS logical blocks:
 *   key   table u32 BE | group u32 BE (8 bytes: records sort by table, then block)
 *   value 8-byte bitmap of the group's mapped blocks (bit b & 7 of byte b >> 3,
 *         as presence bitmaps), then one u32 BE physical block per set bit, in
 *         block order.
 * A mapped block costs 4 bytes plus its share of one key, bitmap and LMDB node
 * per group, where format 1 paid a whole B-tree entry (~23 bytes before page
 * fill). Physical blocks are u32, so a format-2 pool holds < 2^32 blocks.
 * Format 1 (read only, for the migration and fsck): DB `map`, ordered-binary
 * `[table, block]` → number.
 *
 * Cost: `get` is one B-tree lookup and a popcount of ≤ 8 bytes; `ops` reads
 * and rewrites each touched group once per commit.
 */
import { DB } from './keys';
import type { MetadataStore, ReadTransaction, StoreOp } from './metadata-store';

export const GROUP_SHIFT = 6;
export const GROUP_BLOCKS = 1 << GROUP_SHIFT;
const GROUP_MASK = GROUP_BLOCKS - 1;
const BITMAP_BYTES = GROUP_BLOCKS / 8;
/** The largest physical block a format-2 record can hold. */
export const MAX_PHYSICAL_BLOCK = 0xffffffff;

export interface MapEntry {
  table: number;
  block: number;
  physical: number;
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, v) => {
  let n = 0;
  for (let x = v; x; x &= x - 1) n++;
  return n;
});

export function groupKey(table: number, group: number): Buffer {
  const key = Buffer.allocUnsafe(8);
  key.writeUInt32BE(table, 0);
  key.writeUInt32BE(group, 4);
  return key;
}

/** Mapped blocks a group record claims, or -1 if its length disagrees with its bitmap (or it maps none). */
export function groupEntryCount(record: Uint8Array): number {
  if (record.length < BITMAP_BYTES) return -1;
  let n = 0;
  for (let i = 0; i < BITMAP_BYTES; i++) n += POPCOUNT[record[i]!]!;
  return n > 0 && record.length === BITMAP_BYTES + 4 * n ? n : -1;
}

/** The physical block of `offset` in a (valid) group record, or undefined if it does not map it. */
function lookup(record: Uint8Array, offset: number): number | undefined {
  const byte = offset >>> 3;
  const bit = 1 << (offset & 7);
  if (!(record[byte]! & bit)) return undefined;
  let rank = POPCOUNT[record[byte]! & (bit - 1)]!;
  for (let i = 0; i < byte; i++) rank += POPCOUNT[record[i]!]!;
  const at = BITMAP_BYTES + 4 * rank;
  return ((record[at]! << 24) | (record[at + 1]! << 16) | (record[at + 2]! << 8) | record[at + 3]!) >>> 0;
}

/** Every (offset, physical) of a valid group record, in block order. */
export function* decodeGroup(record: Uint8Array): Generator<[offset: number, physical: number]> {
  let at = BITMAP_BYTES;
  for (let offset = 0; offset < GROUP_BLOCKS; offset++) {
    if (!(record[offset >>> 3]! & (1 << (offset & 7)))) continue;
    yield [
      offset,
      ((record[at]! << 24) | (record[at + 1]! << 16) | (record[at + 2]! << 8) | record[at + 3]!) >>> 0,
    ];
    at += 4;
  }
}

/** A group record for `physicals` (index = offset, -1 = not mapped), or undefined if it maps nothing. */
export function encodeGroup(physicals: ArrayLike<number>): Buffer | undefined {
  let n = 0;
  for (let i = 0; i < GROUP_BLOCKS; i++) if (physicals[i]! >= 0) n++;
  if (n === 0) return undefined;
  const record = Buffer.alloc(BITMAP_BYTES + 4 * n);
  let at = BITMAP_BYTES;
  for (let offset = 0; offset < GROUP_BLOCKS; offset++) {
    const physical = physicals[offset]!;
    if (physical < 0) continue;
    record[offset >>> 3]! |= 1 << (offset & 7);
    record.writeUInt32BE(physical, at);
    at += 4;
  }
  return record;
}

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
    return record === undefined ? undefined : lookup(record, block & GROUP_MASK);
  }

  /**
   * Every committed entry (of one table, if given), in (table, block) order.
   * A format-2 record whose length disagrees with its bitmap is skipped and
   * reported to `onInvalid`.
   */
  *entries(
    table?: number,
    transaction?: ReadTransaction,
    onInvalid?: (table: number, group: number) => void,
  ): Generator<MapEntry> {
    if (this.formatVersion === 1) {
      const range = table === undefined ? {} : { start: [table, 0], end: [table, Number.MAX_SAFE_INTEGER] };
      for (const { key, value } of this.store.entries<[number, number], number>(DB.map, range, transaction))
        yield { table: key[0], block: key[1], physical: value };
      return;
    }
    const range = table === undefined ? {} : { start: groupKey(table, 0), end: groupKey(table + 1, 0) };
    for (const { key, value } of this.store.entries<Buffer, Buffer>(DB.mapGroups, range, transaction)) {
      const t = key.readUInt32BE(0);
      const group = key.readUInt32BE(4);
      if (key.length !== 8 || groupEntryCount(value) < 0) {
        onInvalid?.(t, group);
        continue;
      }
      const base = group * GROUP_BLOCKS;
      for (const [offset, physical] of decodeGroup(value)) yield { table: t, block: base + offset, physical };
    }
  }

  /** Records in the map (entries in format 1, groups in format 2): a progress total. */
  recordCount(transaction?: ReadTransaction): number {
    return this.store.count(this.formatVersion === 1 ? DB.map : DB.mapGroups, transaction);
  }

  /**
   * Format-2 store ops applying staged changes (table → block → physical, or
   * null to remove) on top of what is committed: one op per touched group.
   */
  ops(changes: Map<number, Map<number, number | null>>): StoreOp[] {
    const ops: StoreOp[] = [];
    const physicals = new Float64Array(GROUP_BLOCKS);
    for (const [table, blocks] of changes) {
      const byGroup = new Map<number, Array<[number, number | null]>>();
      for (const [block, physical] of blocks) {
        const group = block >>> GROUP_SHIFT;
        let list = byGroup.get(group);
        if (list === undefined) {
          list = [];
          byGroup.set(group, list);
        }
        list.push([block & GROUP_MASK, physical]);
      }
      for (const [group, list] of byGroup) {
        const key = groupKey(table, group);
        physicals.fill(-1);
        const committed = this.store.mapGroupsDb.getBinaryFast(key);
        if (committed !== undefined && groupEntryCount(committed) > 0)
          for (const [offset, physical] of decodeGroup(committed)) physicals[offset] = physical;
        for (const [offset, physical] of list) physicals[offset] = physical ?? -1;
        ops.push({ db: DB.mapGroups, key, value: encodeGroup(physicals) });
      }
    }
    return ops;
  }
}
