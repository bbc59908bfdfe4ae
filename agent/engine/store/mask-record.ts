/**
 * Format 4's sub-block masks (sub-block.ts) of one table and group of 1024
 * logical blocks, beside the group's entries (group-record.ts), under the
 * same key in DB `map-masks`: `offset u16 BE, mask u16 BE` per entry that
 * owns only part of its block, offsets strictly increasing, mask never 0.
 * Only groups with such entries have a record: a table written only in whole
 * blocks pays nothing.
 * Cost: a lookup binary-searches ≤ 1024 entries of 4 bytes.
 */
import { GROUP_BLOCKS } from './group-record';

const ENTRY = 4;

const u16 = (record: Uint8Array, at: number) => (record[at]! << 8) | record[at + 1]!;

/** Entries a mask record holds, or -1 if it does not decode (or holds none). */
export function maskEntryCount(record: Uint8Array): number {
  if (record.length === 0 || record.length % ENTRY !== 0 || record.length > ENTRY * GROUP_BLOCKS) return -1;
  for (let at = 0; at < record.length; at += ENTRY) {
    const offset = u16(record, at);
    if (offset >= GROUP_BLOCKS || u16(record, at + 2) === 0) return -1;
    if (at > 0 && offset <= u16(record, at - ENTRY)) return -1;
  }
  return record.length / ENTRY;
}

/** The mask of `offset` in a valid record (0: none, the entry owns its whole block). */
export function maskLookup(record: Uint8Array, offset: number): number {
  let low = 0;
  let high = record.length / ENTRY - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const at = middle * ENTRY;
    const found = u16(record, at);
    if (found === offset) return u16(record, at + 2);
    if (found < offset) low = middle + 1;
    else high = middle - 1;
  }
  return 0;
}

/** Every (offset, mask) of a valid record, in offset order. */
export function* decodeMasks(record: Uint8Array): Generator<[offset: number, mask: number]> {
  for (let at = 0; at < record.length; at += ENTRY) yield [u16(record, at), u16(record, at + 2)];
}

/** The record for `masks` (index = offset, 0 = none), or undefined if it has none. */
export function encodeMasks(masks: ArrayLike<number>): Buffer | undefined {
  let n = 0;
  for (let i = 0; i < GROUP_BLOCKS; i++) if (masks[i]! > 0) n++;
  if (n === 0) return undefined;
  const record = Buffer.alloc(ENTRY * n);
  let at = 0;
  for (let offset = 0; offset < GROUP_BLOCKS; offset++) {
    if (!(masks[offset]! > 0)) continue;
    record.writeUInt16BE(offset, at);
    record.writeUInt16BE(masks[offset]!, at + 2);
    at += ENTRY;
  }
  return record;
}

const MASK_UNIT = 2 ** 32;

/** An entry as one number (the write batch's, the map's `write`): its physical block + its mask × 2^32 (0: the whole block). */
export function entryValue(physical: number, mask: number): number {
  return physical + mask * MASK_UNIT;
}

export function entryPhysical(value: number): number {
  return value % MASK_UNIT;
}

export function entryMask(value: number): number {
  return Math.floor(value / MASK_UNIT);
}
