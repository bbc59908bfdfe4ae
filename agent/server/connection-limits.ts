/**
 * Connection counting for a listener: at most `perAddress` open connections
 * from one peer address and `total` in all. A slot is taken when a
 * connection is accepted and given back when it closes, so a client that
 * opens sockets and leaves them idle cannot take every slot the agent has.
 */
export interface ConnectionLimitOptions {
  /** Open connections one peer address may hold. */
  perAddress: number;
  /** Open connections in all. */
  total: number;
}

export type LimitRefusal = 'per-address-limit' | 'total-limit';

export class ConnectionLimits {
  private readonly byAddress = new Map<string, number>();
  private open = 0;

  constructor(private readonly limits: ConnectionLimitOptions) {
    for (const [name, value] of Object.entries({ perAddress: limits.perAddress, total: limits.total }))
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
  }

  /**
   * Takes a slot for a connection from `address` (null: a peer without an
   * address, such as a Unix socket client, counted against the total only).
   * Returns the function that gives the slot back (idempotent), or why not.
   */
  admit(address: string | null): { release: () => void } | { refused: LimitRefusal } {
    if (this.open >= this.limits.total) return { refused: 'total-limit' };
    const held = address === null ? 0 : (this.byAddress.get(address) ?? 0);
    if (held >= this.limits.perAddress) return { refused: 'per-address-limit' };
    this.open++;
    if (address !== null) this.byAddress.set(address, held + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.open--;
        if (address === null) return;
        const left = (this.byAddress.get(address) ?? 1) - 1;
        if (left > 0) this.byAddress.set(address, left);
        else this.byAddress.delete(address);
      },
    };
  }

  /** Open connections (all addresses). */
  get size(): number {
    return this.open;
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
