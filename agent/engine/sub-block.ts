/**
 * Sub-blocks: a write into a block a table does not own yet, covering whole
 * sub-blocks of it, gets a new block holding only what it wrote, and the
 * entry says which sub-blocks are its own (its mask); the others read
 * through to the chain below the table, as before the write. A 4 KiB write
 * into a clone's 64 KiB block then writes 4 KiB, where a copy-up read the
 * block and wrote all 64 KiB (qcow2 without subclusters does the same).
 *
 * A block has at most 16 sub-blocks of at least 4 KiB (the guest's page and
 * file-system block): 64 KiB blocks have 16 of 4 KiB, 1 MiB blocks 16 of
 * 64 KiB, 4 KiB blocks none (a mask would only say "whole"). Mask 0 means the
 * whole block is the entry's own (every entry before format 4).
 *
 * In memory and in the write batch an entry is one number: physical +
 * mask × 2^32 (exact below 2^53; store/mask-record.ts). Cost: O(1) arithmetic.
 */
export { entryMask, entryPhysical, entryValue } from './store/mask-record';

export const MIN_SUB_BLOCK = 4096;
export const MAX_SUB_BLOCKS = 16;

/** Bytes per sub-block of a pool's blocks (the block size itself: no sub-blocks). */
export function subBlockSize(blockSize: number): number {
  return Math.max(MIN_SUB_BLOCK, blockSize / MAX_SUB_BLOCKS);
}

/** Sub-blocks per block (1: none). */
export function subBlocks(blockSize: number): number {
  return blockSize / subBlockSize(blockSize);
}

/** The mask with every sub-block of a block set. */
export function fullMask(blockSize: number): number {
  return (1 << subBlocks(blockSize)) - 1;
}

/**
 * The mask of the sub-blocks [inBlock, inBlock + length) covers, if it covers
 * only whole ones and not all of them; 0 otherwise (not aligned, or the
 * whole block, or the pool has no sub-blocks).
 */
export function coveredMask(blockSize: number, inBlock: number, length: number): number {
  const size = subBlockSize(blockSize);
  if (size === blockSize || length >= blockSize || inBlock % size !== 0 || length % size !== 0) return 0;
  const first = inBlock / size;
  return ((1 << (length / size)) - 1) << first;
}

/** The mask of every sub-block [inBlock, inBlock + length) touches, whole or in part. */
export function touchedMask(blockSize: number, inBlock: number, length: number): number {
  const size = subBlockSize(blockSize);
  const first = Math.floor(inBlock / size);
  const last = Math.floor((inBlock + length - 1) / size);
  return ((1 << (last - first + 1)) - 1) << first;
}

/** Whether `mask` is one an entry may hold: some sub-blocks, not all, none past the block. */
export function validMask(blockSize: number, mask: number): boolean {
  return Number.isInteger(mask) && mask > 0 && mask < fullMask(blockSize);
}

/** A block's bytes as runs of sub-blocks an entry with `mask` owns (true) or reads from below (false), in order. */
export function maskSpans(
  blockSize: number,
  mask: number,
): Array<[start: number, end: number, own: boolean]> {
  const size = subBlockSize(blockSize);
  const n = subBlocks(blockSize);
  const spans: Array<[number, number, boolean]> = [];
  for (let i = 0; i < n; ) {
    const own = ((mask >>> i) & 1) === 1;
    let j = i + 1;
    while (j < n && ((mask >>> j) & 1) === (own ? 1 : 0)) j++;
    spans.push([i * size, j * size, own]);
    i = j;
  }
  return spans;
}

/** The byte just past the last sub-block `mask` has (the block size for 0: the whole block). */
export function maskEnd(blockSize: number, mask: number): number {
  return mask === 0 ? blockSize : (32 - Math.clz32(mask)) * subBlockSize(blockSize);
}
