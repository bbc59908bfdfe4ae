/**
 * The bytes all WebSocket connections hold together (`serve
 * --max-held-bytes-total`): each connection's own bound (connection-bytes.ts)
 * keeps one client at about 64 MiB plus a request, but one local client may
 * open 64 connections, ~6 GiB. While the total is at its bound, every
 * connection that holds bytes reads no more of its frames and its reads wait
 * for room; every release wakes the waiting ones, oldest first.
 *
 * A connection that holds nothing still takes its next request above the
 * total (as one request may exceed a connection's own bound): clients that
 * never read and hold the whole total must not stop the others. Worst case:
 * the total plus one request (a 32 MiB read or write) per connection.
 */

/** What the total asks of a connection when it changes. */
export interface TotalMember {
  /** Pauses or resumes reading as its own bytes and the total now say. */
  update(): void;
  /** Gives its waiting reservations the bytes that now fit, oldest first. */
  grant(): void;
}

export class HeldBytesTotal {
  private held = 0;
  /** Connections holding bytes: the ones paused while the total is at its bound. */
  private readonly holders = new Set<TotalMember>();
  /** Connections with reservations waiting, in the order they began to wait. */
  private readonly waiting = new Set<TotalMember>();
  /** Connections whose frames are not being read (their own bound or the total's). */
  private readonly paused = new Set<TotalMember>();

  constructor(
    /** Bytes held in all above which connections that hold bytes read no more. */
    readonly limit: number,
  ) {}

  /** Bytes all connections hold now (metrics, tests). */
  get bytes(): number {
    return this.held;
  }

  /** Whether the total is at its bound: connections that hold bytes are paused. */
  get full(): boolean {
    return this.held >= this.limit;
  }

  /** Connections whose frames are not being read now, for their own bound or the total's (metrics). */
  get pausedConnections(): number {
    return this.paused.size;
  }

  /** `member` stopped (`true`) or resumed (`false`) reading its frames. */
  pausedReading(member: TotalMember, paused: boolean): void {
    if (paused) this.paused.add(member);
    else this.paused.delete(member);
  }

  /** Whether `bytes` more fit under the bound. */
  fits(bytes: number): boolean {
    return this.held + bytes <= this.limit;
  }

  /** `member` now holds `bytes` more (`holds`: it holds any at all now). */
  add(member: TotalMember, bytes: number, holds: boolean): void {
    const wasFull = this.full;
    this.held += bytes;
    if (holds) this.holders.add(member);
    if (this.full !== wasFull) this.updateHolders();
  }

  /** `member` gave back `bytes` (`holds`: it still holds some); the waiting ones get what fits now. */
  remove(member: TotalMember, bytes: number, holds: boolean): void {
    const wasFull = this.full;
    this.held = Math.max(0, this.held - bytes);
    if (!holds) this.holders.delete(member);
    for (const next of this.waiting) next.grant();
    if (this.full !== wasFull) this.updateHolders();
  }

  /** `member` has reservations waiting (`true`) or none any more (`false`). */
  wait(member: TotalMember, waits: boolean): void {
    if (waits) this.waiting.add(member);
    else this.waiting.delete(member);
  }

  /** The total crossed its bound: holders pause or resume. */
  private updateHolders(): void {
    for (const member of [...this.holders]) member.update();
  }
}

/** No bound in all: each connection only by its own (a server without --max-held-bytes-total, tests). */
export const unboundedTotal = (): HeldBytesTotal => new HeldBytesTotal(Number.POSITIVE_INFINITY);
