/**
 * LMDB's on-disk page format as the checks before open read it
 * (liblmdb/mdb.c in the lmdb package: MDB_page_header, MDB_node, MDB_db).
 * LMDB writes its numbers in the host's byte order.
 */
import * as os from 'node:os';

export const P_BRANCH = 0x01;
export const P_LEAF = 0x02;
export const P_OVERFLOW = 0x04;
export const P_META = 0x08;
export const P_LEAF2 = 0x20;
/** Root page number of an empty tree. */
export const P_INVALID = 0xffff_ffff_ffff_ffffn;
/** Pages 0 and 1 are the metas; trees start after them. */
export const NUM_METAS = 2;
/** The page header: u64 page number, u64 txnid, u16 pad, u16 flags, u16 lower, u16 upper (or u32 overflow pages). */
export const PAGE_HEADER_BYTES = 24;

const littleEndian = os.endianness() === 'LE';
export const u16 = (b: Buffer, at: number) => (littleEndian ? b.readUInt16LE(at) : b.readUInt16BE(at));
export const u32 = (b: Buffer, at: number) => (littleEndian ? b.readUInt32LE(at) : b.readUInt32BE(at));
export const u64 = (b: Buffer, at: number) => (littleEndian ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at));
