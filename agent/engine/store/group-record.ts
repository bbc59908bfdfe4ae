/**
 * Format 2's block-map record: the entries (logical block → physical block,
 * 0 = explicit zeros) of one table in one group of GROUP_BLOCKS = 1024 logical
 * blocks, in the smaller of two encodings, told apart by length:
 * - sparse, fewer than DENSE_MIN (64) entries: `offset u16 BE, physical u32
 *   BE` per entry, offsets strictly increasing (6 bytes each; length < 384);
 * - dense, DENSE_MIN or more: a 128-byte bitmap of the mapped offsets (bit
 *   o & 7 of byte o >> 3, as presence bitmaps), then one physical u32 BE per
 *   set bit in offset order (length = 128 + 4 × entries ≥ 384).
 * Big groups spread LMDB's per-record cost (node header, key) over many
 * blocks even in sparsely written tables; from ~470 entries a record (up to
 * 4.2 KiB) no longer fits a 4 KiB leaf's node limit and lives on LMDB
 * overflow pages (2 per fully mapped group: 8 bytes per block).
 * Key: `table u32 BE | group u32 BE`, so records sort by table, then block.
 * Physical blocks are u32: a format-2 pool holds fewer than 2^32 blocks.
 *
 * Cost: a lookup binary-searches ≤ 63 sparse entries or popcounts ≤ 128 bytes.
 */
export const GROUP_SHIFT = 10;
export const GROUP_BLOCKS = 1 << GROUP_SHIFT;
export const GROUP_MASK = GROUP_BLOCKS - 1;
const BITMAP_BYTES = GROUP_BLOCKS / 8;
const SPARSE_ENTRY = 6;
/** Entries from which the dense encoding is the smaller (128 + 4n ≤ 6n): 64. */
const DENSE_MIN = BITMAP_BYTES / (SPARSE_ENTRY - 4);
/** The largest physical block a format-2 record can hold. */
export const MAX_PHYSICAL_BLOCK = 0xffffffff;

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

const u32 = (record: Uint8Array, at: number) =>
  ((record[at]! << 24) | (record[at + 1]! << 16) | (record[at + 2]! << 8) | record[at + 3]!) >>> 0;

const isSparse = (record: Uint8Array) => record.length < BITMAP_BYTES + 4 * DENSE_MIN;
const offsetAt = (record: Uint8Array, at: number) => (record[at]! << 8) | record[at + 1]!;

/** Entries a group record holds, or -1 if it does not decode (or holds none). */
export function groupEntryCount(record: Uint8Array): number {
  if (isSparse(record)) {
    if (record.length === 0 || record.length % SPARSE_ENTRY !== 0) return -1;
    for (let at = 0; at < record.length; at += SPARSE_ENTRY)
      if (
        offsetAt(record, at) >= GROUP_BLOCKS ||
        (at > 0 && offsetAt(record, at) <= offsetAt(record, at - SPARSE_ENTRY))
      )
        return -1;
    return record.length / SPARSE_ENTRY;
  }
  let n = 0;
  for (let i = 0; i < BITMAP_BYTES; i++) n += POPCOUNT[record[i]!]!;
  return n >= DENSE_MIN && record.length === BITMAP_BYTES + 4 * n ? n : -1;
}

/** The physical block of `offset` in a valid group record, or undefined if it does not map it. */
export function groupLookup(record: Uint8Array, offset: number): number | undefined {
  if (isSparse(record)) {
    let low = 0;
    let high = record.length / SPARSE_ENTRY - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const at = middle * SPARSE_ENTRY;
      const found = offsetAt(record, at);
      if (found === offset) return u32(record, at + 2);
      if (found < offset) low = middle + 1;
      else high = middle - 1;
    }
    return undefined;
  }
  const byte = offset >>> 3;
  const bit = 1 << (offset & 7);
  if (!(record[byte]! & bit)) return undefined;
  let rank = POPCOUNT[record[byte]! & (bit - 1)]!;
  for (let i = 0; i < byte; i++) rank += POPCOUNT[record[i]!]!;
  return u32(record, BITMAP_BYTES + 4 * rank);
}

/** Every (offset, physical) of a valid group record, in offset order. */
export function* decodeGroup(record: Uint8Array): Generator<[offset: number, physical: number]> {
  if (isSparse(record)) {
    for (let at = 0; at < record.length; at += SPARSE_ENTRY)
      yield [offsetAt(record, at), u32(record, at + 2)];
    return;
  }
  let at = BITMAP_BYTES;
  for (let offset = 0; offset < GROUP_BLOCKS; offset++) {
    if (!(record[offset >>> 3]! & (1 << (offset & 7)))) continue;
    yield [offset, u32(record, at)];
    at += 4;
  }
}

/** The record for `physicals` (index = offset, < 0 = not mapped), or undefined if it maps nothing. */
export function encodeGroup(physicals: ArrayLike<number>): Buffer | undefined {
  let n = 0;
  for (let i = 0; i < GROUP_BLOCKS; i++) if (physicals[i]! >= 0) n++;
  if (n === 0) return undefined;
  if (n < DENSE_MIN) {
    const record = Buffer.alloc(SPARSE_ENTRY * n);
    let at = 0;
    for (let offset = 0; offset < GROUP_BLOCKS; offset++) {
      if (physicals[offset]! < 0) continue;
      record.writeUInt16BE(offset, at);
      record.writeUInt32BE(physicals[offset]!, at + 2);
      at += SPARSE_ENTRY;
    }
    return record;
  }
  const record = Buffer.alloc(BITMAP_BYTES + 4 * n);
  let at = BITMAP_BYTES;
  for (let offset = 0; offset < GROUP_BLOCKS; offset++) {
    if (physicals[offset]! < 0) continue;
    record[offset >>> 3]! |= 1 << (offset & 7);
    record.writeUInt32BE(physicals[offset]!, at);
    at += 4;
  }
  return record;
}
