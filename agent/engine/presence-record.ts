/**
 * A presence chunk's record (DB `presence`, [table, chunk] → which of the
 * chunk's 4096 blocks the table maps), in the smaller of two encodings, told
 * apart by length:
 * - bitmap, 512 bytes (bit b & 7 of byte b >> 3), the only one before format 4;
 * - from format 4, a list of the mapped offsets (u16 BE, increasing) while
 *   that is smaller: fewer than 256 blocks, 2 bytes each (length < 512).
 * A table that maps a few blocks per chunk (a clone, a day's snapshot of a
 * big disk) paid 512 bytes per chunk it touched: most of its metadata.
 * Cost: O(mapped blocks) or O(512) per record, at load and commit.
 */
import { CHUNK_BLOCKS, CHUNK_BYTES, popcount } from './presence';

/** The record for a chunk's bitmap. */
export function encodePresence(bits: Uint8Array): Buffer {
  const count = popcount(bits);
  if (2 * count >= CHUNK_BYTES) return Buffer.from(bits);
  const record = Buffer.allocUnsafe(2 * count);
  let at = 0;
  for (let byte = 0; byte < CHUNK_BYTES; byte++) {
    const b = bits[byte]!;
    if (b === 0) continue;
    for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) at = record.writeUInt16BE(byte * 8 + bit, at);
  }
  return record;
}

/** The bitmap a record holds, or undefined if it does not decode. */
export function decodePresence(record: Uint8Array): Uint8Array | undefined {
  if (record.length === CHUNK_BYTES) return record;
  if (record.length % 2 !== 0 || record.length > CHUNK_BYTES) return undefined;
  const bits = new Uint8Array(CHUNK_BYTES);
  let last = -1;
  for (let at = 0; at < record.length; at += 2) {
    const offset = (record[at]! << 8) | record[at + 1]!;
    if (offset >= CHUNK_BLOCKS || offset <= last) return undefined;
    bits[offset >>> 3]! |= 1 << (offset & 7);
    last = offset;
  }
  return bits;
}
