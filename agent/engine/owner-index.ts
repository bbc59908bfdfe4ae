/**
 * Owner index: for a frozen table F and a chunk of logical blocks, which table
 * in F's chain maps each block (0: none). Frozen tables and their chains never
 * change, so an entry stays valid until F is discarded; it is built once from
 * the presence sets (in memory, no store lookups) and then answers a chain
 * walk of any depth with one array read. Bounded, evicting oldest first.
 *
 * Cost: hit O(1). Miss: O(d × CHUNK_BLOCKS/8) for the d chain levels below the
 * nearest ancestor that already has the chunk cached.
 */
import { CHUNK_BLOCKS, CHUNK_BYTES } from './presence';
import type { TableState } from './table-state';

export class OwnerIndex {
  private readonly cache = new Map<number, Map<number, Uint32Array>>();
  private readonly lru = new Map<string, [number, number]>();

  constructor(private readonly maxChunks = 4096) {}

  /** Owners of every block of `chunk` as seen through frozen table `table`. */
  chunk(table: TableState, chunk: number): Uint32Array {
    const hit = this.cache.get(table.id)?.get(chunk);
    // FIFO eviction, not LRU: a hit stays two Map lookups on the read path.
    if (hit !== undefined) return hit;
    // Walk up to the nearest cached ancestor, then overlay back down to `table`.
    const path: TableState[] = [];
    let base: Uint32Array | undefined;
    for (let t: TableState | null = table; t !== null; t = t.parent) {
      base = t === table ? undefined : this.cache.get(t.id)?.get(chunk);
      if (base !== undefined) break;
      path.push(t);
    }
    const owners = base ? base.slice() : new Uint32Array(CHUNK_BLOCKS);
    for (let i = path.length - 1; i >= 0; i--) {
      const t = path[i]!;
      const bits = t.presence.chunks.get(chunk);
      if (bits === undefined) continue;
      for (let byte = 0; byte < CHUNK_BYTES; byte++) {
        const b = bits[byte]!;
        if (b === 0) continue;
        for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) owners[byte * 8 + bit] = t.id;
      }
    }
    this.store(table.id, chunk, owners);
    return owners;
  }

  /** Drops every entry of a table (it was discarded, or un-frozen by a rollback). */
  evict(tableId: number): void {
    const chunks = this.cache.get(tableId);
    if (chunks === undefined) return;
    for (const chunk of chunks.keys()) this.lru.delete(`${tableId}:${chunk}`);
    this.cache.delete(tableId);
  }

  private store(tableId: number, chunk: number, owners: Uint32Array): void {
    let chunks = this.cache.get(tableId);
    if (chunks === undefined) {
      chunks = new Map();
      this.cache.set(tableId, chunks);
    }
    chunks.set(chunk, owners);
    this.lru.set(`${tableId}:${chunk}`, [tableId, chunk]);
    while (this.lru.size > this.maxChunks) {
      const [key, [t, c]] = this.lru.entries().next().value as [string, [number, number]];
      this.lru.delete(key);
      const m = this.cache.get(t);
      m?.delete(c);
      if (m?.size === 0) this.cache.delete(t);
    }
  }
}
