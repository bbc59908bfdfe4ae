/**
 * Memory-aligned buffers for O_DIRECT writes (direct-writes.ts), reused. The
 * kernel refuses a direct write whose memory is not aligned to the device's
 * DMA alignment (512 bytes on virtio-blk); a Node Buffer has no such
 * alignment. A buffer here is cut from a slightly larger allocation at its
 * first ALIGN-aligned address: an ArrayBuffer's backing store never moves,
 * so the cut stays aligned for the buffer's life.
 *
 * Reused, not allocated per write: fresh memory costs a page fault per 4 KiB
 * on first touch (on the VM test host, where freed memory goes back to the
 * hypervisor, about 2 ms per MiB: more than the write itself).
 *
 * Contract: `takeAligned()` gives an ALIGNED_BYTES buffer, ALIGN-aligned,
 * content unspecified, or null where addresses cannot be known (no koffi);
 * `giveAligned` takes one back once no I/O uses it, at most once.
 * Cost: O(1); at most KEPT buffers are kept (16 MiB).
 */
import { bufferAddress } from '../../native/libc';

/** Memory alignment of every buffer (and the position and length alignment direct-writes.ts asks for). */
export const ALIGN = 4096;
/** Each buffer's size: a direct write is cut into pieces of at most this. */
export const ALIGNED_BYTES = 1024 * 1024;
/** Free buffers kept: 16 pieces of 1 MiB in flight come back to it without allocating. */
const KEPT = 16;

const free: Buffer[] = [];

export function takeAligned(): Buffer | null {
  const kept = free.pop();
  if (kept) return kept;
  const raw = Buffer.allocUnsafeSlow(ALIGNED_BYTES + ALIGN);
  const address = bufferAddress(raw);
  if (address === null) return null;
  const skip = (ALIGN - Number(address % BigInt(ALIGN))) % ALIGN;
  return raw.subarray(skip, skip + ALIGNED_BYTES);
}

export function giveAligned(buffer: Buffer): void {
  if (free.length < KEPT) free.push(buffer);
}
