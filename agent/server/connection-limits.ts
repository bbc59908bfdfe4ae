/**
 * Connection counting for a listener, in two budgets, each of at most
 * `perAddress` connections per peer address and `total` in all:
 *
 * - connections that have not authenticated yet (WebSocket: before the
 *   upgrade's token check passed; NBD on TCP: before the handshake
 *   finished). When the budget of an address (or the total) is full, the
 *   OLDEST of them is closed to admit the new one: a neighbour without
 *   credentials holding idle sockets only churns, and a client with
 *   credentials always gets its handshake attempt.
 * - authenticated connections: a slot is taken when the connection
 *   authenticates and refused when the budget is full, as a client with
 *   credentials holding too many connections is refused.
 *
 * A slot is given back when its connection closes.
 */
export interface ConnectionLimitOptions {
  /** Connections one peer address may hold in each budget. */
  perAddress: number;
  /** Connections in all, in each budget. */
  total: number;
}

export type LimitRefusal = 'per-address-limit' | 'total-limit';

export interface ConnectionSlot {
  /**
   * The connection authenticated: it moves to the authenticated budget, or
   * gets why not (then the caller closes it; its slot is given back).
   */
  authenticated(): LimitRefusal | null;
  /** Gives the slot back (idempotent). */
  release(): void;
}

/** Open connections per address and in all. */
class Budget {
  private readonly byAddress = new Map<string, number>();
  open = 0;

  held(address: string | null): number {
    return address === null ? 0 : (this.byAddress.get(address) ?? 0);
  }

  take(address: string | null): void {
    this.open++;
    if (address !== null) this.byAddress.set(address, this.held(address) + 1);
  }

  give(address: string | null): void {
    this.open--;
    if (address === null) return;
    const left = this.held(address) - 1;
    if (left > 0) this.byAddress.set(address, left);
    else this.byAddress.delete(address);
  }
}

/** A connection not yet authenticated, and how to close it when a newer one needs its slot. */
interface Pending {
  address: string;
  evict(): void;
}

export class ConnectionLimits {
  private readonly authenticatedBudget = new Budget();
  /** Unauthenticated connections, oldest first (a Set keeps insertion order). */
  private readonly pending = new Set<Pending>();
  private readonly pendingByAddress = new Map<string, Set<Pending>>();

  constructor(private readonly limits: ConnectionLimitOptions) {
    for (const [name, value] of Object.entries({ perAddress: limits.perAddress, total: limits.total }))
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
  }

  /**
   * Takes a slot for a new connection from `address`. A peer without an
   * address (a Unix socket client, authenticated by the socket's
   * permissions) is authenticated at once and counted against the total
   * only; it is refused when the total is full. Any other connection is
   * admitted as unauthenticated, closing (`evict`) the oldest
   * unauthenticated one of its address, or of all, when a budget is full.
   */
  admit(address: string | null, evict: () => void): ConnectionSlot | { refused: LimitRefusal } {
    if (address === null) {
      const refused = this.refusal(null);
      if (refused) return { refused };
      this.authenticatedBudget.take(null);
      return this.authenticatedSlot(null);
    }
    const ofAddress = this.pendingByAddress.get(address) ?? new Set<Pending>();
    if (ofAddress.size >= this.limits.perAddress) this.evictOldest(ofAddress);
    if (this.pending.size >= this.limits.total) this.evictOldest(this.pending);
    const entry: Pending = { address, evict };
    this.pending.add(entry);
    ofAddress.add(entry);
    this.pendingByAddress.set(address, ofAddress);
    let state: 'pending' | 'authenticated' | 'released' = 'pending';
    let authenticatedRelease: (() => void) | null = null;
    return {
      authenticated: () => {
        if (state === 'authenticated') return null;
        this.forget(entry);
        // Evicted or closed meanwhile: its slot went to a newer connection.
        if (state === 'released') return 'per-address-limit';
        const refused = this.refusal(address);
        if (refused) {
          state = 'released';
          return refused;
        }
        state = 'authenticated';
        this.authenticatedBudget.take(address);
        authenticatedRelease = this.authenticatedSlot(address).release;
        return null;
      },
      release: () => {
        this.forget(entry);
        authenticatedRelease?.();
        state = 'released';
      },
    };
  }

  /** Open connections (both budgets, all addresses). */
  get size(): number {
    return this.authenticatedBudget.open + this.pending.size;
  }

  private refusal(address: string | null): LimitRefusal | null {
    if (this.authenticatedBudget.open >= this.limits.total) return 'total-limit';
    if (this.authenticatedBudget.held(address) >= this.limits.perAddress) return 'per-address-limit';
    return null;
  }

  private authenticatedSlot(address: string | null): ConnectionSlot {
    let released = false;
    return {
      authenticated: () => null,
      release: () => {
        if (released) return;
        released = true;
        this.authenticatedBudget.give(address);
      },
    };
  }

  private evictOldest(entries: Set<Pending>): void {
    const oldest = entries.values().next().value;
    if (oldest === undefined) return;
    this.forget(oldest);
    oldest.evict();
  }

  private forget(entry: Pending): void {
    this.pending.delete(entry);
    const ofAddress = this.pendingByAddress.get(entry.address);
    ofAddress?.delete(entry);
    if (ofAddress?.size === 0) this.pendingByAddress.delete(entry.address);
  }
}

/** Logs a refusal at most once per address and interval, with how many were refused: a flood must not flood the log. */
export class RefusalLog {
  private readonly last = new Map<string, { at: number; count: number }>();

  constructor(
    private readonly write: (fields: { remote: string; reason: string; refused: number }) => void,
    private readonly intervalMs = 10_000,
  ) {}

  refused(remote: string, reason: string): void {
    const now = Date.now();
    const entry = this.last.get(remote);
    if (entry && now - entry.at < this.intervalMs) {
      entry.count++;
      return;
    }
    this.write({ remote, reason, refused: (entry?.count ?? 0) + 1 });
    this.last.set(remote, { at: now, count: 0 });
    // Forget old addresses so the map stays small under a flood from many sources.
    if (this.last.size > 10_000) this.last.clear();
  }
}
