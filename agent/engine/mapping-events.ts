/**
 * Tells readers outside the engine (the NBD transmission threads, which read
 * the data file themselves from block addresses the engine gave them) when
 * an address they hold may no longer be right.
 *
 * Contract:
 * - `remapped(table, block)`: an entry of a current table was set or removed
 *   (a write's copy-on-write, a trim). Called when it is staged, before the
 *   write is acknowledged. The old block is not free yet: what a reader read
 *   from it is the data as it was before the write.
 * - `reset()`: anything may have changed: freed blocks became allocatable (a
 *   commit), a transaction was rolled back, a metadata operation ran (chains,
 *   owners, generations). Called before any freed block can be handed out
 *   again, so a reader that drops every address it holds and rechecks its
 *   epoch after each read never sends bytes from a reused block.
 * Cost: one branch per staged entry while nobody listens.
 */

export interface MappingListener {
  remapped(table: number, block: number): void;
  reset(): void;
}

export class MappingEvents {
  private readonly listeners = new Set<MappingListener>();

  /** Whether anyone listens (the write path skips the calls otherwise). */
  get active(): boolean {
    return this.listeners.size > 0;
  }

  /** Starts telling `listener`; returns the call that stops it. */
  listen(listener: MappingListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  remapped(table: number, block: number): void {
    for (const l of this.listeners) l.remapped(table, block);
  }

  reset(): void {
    for (const l of this.listeners) l.reset();
  }
}
