/**
 * Block-sized buffers for copy-ups, reused. A write that covers part of a
 * new block needs the whole block in memory (its old content read, the write
 * laid over it); a fresh zeroed Buffer per such write cost a memset and, at
 * thousands of 4 KiB writes a second, hundreds of MB/s of memory outside
 * V8's heap, which makes V8 run full collections over the agent's whole heap
 * (on the 2-core test host its collector took a fifth of the CPU in 4-disk
 * random writes).
 *
 * Contract: `takeBlockBuffer` gives a buffer of `size` bytes whose content is
 * unspecified (the caller fills every byte); `giveBlockBuffers` takes them
 * back once no I/O uses them, and each buffer is given back at most once.
 * Cost: O(1) per buffer; at most KEPT_BYTES of free buffers are kept.
 */

/** Free buffers kept, in bytes, per block size (16 MiB: 256 copy-ups of 64 KiB in flight come back to it). */
const KEPT_BYTES = 16 * 1024 * 1024;

const free = new Map<number, Buffer[]>();

export function takeBlockBuffer(size: number): Buffer {
  return free.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
}

export function giveBlockBuffers(buffers: Buffer[]): void {
  for (const buffer of buffers) {
    let list = free.get(buffer.length);
    if (list === undefined) {
      list = [];
      free.set(buffer.length, list);
    }
    if ((list.length + 1) * buffer.length > KEPT_BYTES) return;
    list.push(buffer);
  }
}
