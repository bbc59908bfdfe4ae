/**
 * Presence set: which logical blocks one mapping table maps, as a bitmap
 * split into fixed chunks so only touched chunks use memory and so the store
 * keeps one small record per chunk.
 * Cost: has/add/delete O(1); a chunk is CHUNK_BLOCKS bits.
 */
export const CHUNK_SHIFT = 12;
export const CHUNK_BLOCKS = 1 << CHUNK_SHIFT;
export const CHUNK_MASK = CHUNK_BLOCKS - 1;
export const CHUNK_BYTES = CHUNK_BLOCKS / 8;

export class PresenceSet {
  readonly chunks = new Map<number, Uint8Array>();
  /** Number of blocks present. */
  count = 0;

  has(block: number): boolean {
    const chunk = this.chunks.get(block >>> CHUNK_SHIFT);
    return chunk !== undefined && (chunk[(block & CHUNK_MASK) >>> 3]! & (1 << (block & 7))) !== 0;
  }

  /** Sets the bit; returns false if it was already set. */
  add(block: number): boolean {
    const index = block >>> CHUNK_SHIFT;
    let chunk = this.chunks.get(index);
    if (chunk === undefined) {
      chunk = new Uint8Array(CHUNK_BYTES);
      this.chunks.set(index, chunk);
    }
    const byte = (block & CHUNK_MASK) >>> 3;
    const bit = 1 << (block & 7);
    if (chunk[byte]! & bit) return false;
    chunk[byte]! |= bit;
    this.count++;
    return true;
  }

  /** Clears the bit; returns false if it was not set. Drops chunks that become empty. */
  delete(block: number): boolean {
    const index = block >>> CHUNK_SHIFT;
    const chunk = this.chunks.get(index);
    if (chunk === undefined) return false;
    const byte = (block & CHUNK_MASK) >>> 3;
    const bit = 1 << (block & 7);
    if (!(chunk[byte]! & bit)) return false;
    chunk[byte]! &= ~bit;
    this.count--;
    if (chunk.every((b) => b === 0)) this.chunks.delete(index);
    return true;
  }

  /** Loads a chunk as stored. */
  loadChunk(index: number, bits: Uint8Array): void {
    const copy = new Uint8Array(CHUNK_BYTES);
    copy.set(bits.subarray(0, CHUNK_BYTES));
    this.chunks.set(index, copy);
    this.count += popcount(copy);
  }

  /** Blocks present in [from, to), in order. */
  *blocksIn(from: number, to: number): Generator<number> {
    for (const index of [...this.chunks.keys()].sort((a, b) => a - b)) {
      const base = index * CHUNK_BLOCKS;
      if (base + CHUNK_BLOCKS <= from || base >= to) continue;
      const chunk = this.chunks.get(index)!;
      for (let byte = 0; byte < CHUNK_BYTES; byte++) {
        const bits = chunk[byte]!;
        if (bits === 0) continue;
        for (let bit = 0; bit < 8; bit++) {
          if (bits & (1 << bit)) {
            const block = base + byte * 8 + bit;
            if (block >= from && block < to) yield block;
          }
        }
      }
    }
  }
}

export function popcount(bits: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bits.length; i++) {
    let v = bits[i]!;
    while (v) {
      v &= v - 1;
      n++;
    }
  }
  return n;
}
