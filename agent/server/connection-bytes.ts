/**
 * The bytes one WebSocket connection holds for its client, bounded as an NBD
 * connection's are (nbd/transmission.ts): replies not yet handed to the
 * kernel (the client is not reading them), read data being read for a reply,
 * and write data received and not yet written. At `limit` the connection
 * reads no more of its frames until it is below again, and a read waits for
 * room before it takes its buffer: a client that pipelines 32 MiB reads and
 * never takes the replies costs about `limit` plus one request, not
 * `--max-in-flight` × 32 MiB that the agent cannot give back.
 *
 * A request larger than the limit still runs, alone (nothing else held).
 * All connections together are bounded too (held-bytes-total.ts): while the
 * total is at its bound a connection that holds bytes is paused and its
 * reads wait, as at its own bound.
 * Cost: four counter updates per reply (its own and the total); a socket
 * pause/resume at the edges; each release asks the connections with
 * reservations waiting whether theirs fit now.
 */
import { type HeldBytesTotal, type TotalMember, unboundedTotal } from './held-bytes-total';

export class ConnectionBytes implements TotalMember {
  private held = 0;
  private readonly waiting: Array<{ bytes: number; resolve: () => void }> = [];
  private paused = false;

  constructor(
    /** Bytes held above which the connection's frames are no longer read. */
    private readonly limit: number,
    /** Stops (true) or resumes (false) reading the connection's frames. */
    private readonly pauseReading: (paused: boolean) => void,
    /** The bytes of all connections, shared (`serve --max-held-bytes-total`). */
    private readonly total: HeldBytesTotal = unboundedTotal(),
  ) {}

  /** Whether the connection's frames are not being read now (at the limit). */
  get readingPaused(): boolean {
    return this.paused;
  }

  /** Bytes held now (tests, stats). */
  get bytes(): number {
    return this.held;
  }

  /** Holds `bytes` once they fit (waiting behind earlier reservations); `release` gives them back. */
  reserve(bytes: number): Promise<void> {
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.take(bytes);
      return Promise.resolve();
    }
    this.total.wait(this, true);
    return new Promise((resolve) => this.waiting.push({ bytes, resolve }));
  }

  /** Holds `bytes` now (what has already arrived or been made). */
  take(bytes: number): void {
    this.hold(bytes);
    this.update();
  }

  release(bytes: number): void {
    const released = Math.min(this.held, bytes);
    this.held -= released;
    // Wakes the waiting reservations of every connection, this one's among them.
    this.total.remove(this, released, this.held > 0);
    this.grant();
    this.update();
  }

  grant(): void {
    let granted = false;
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!;
      this.hold(next.bytes);
      next.resolve();
      granted = true;
    }
    if (this.waiting.length === 0) this.total.wait(this, false);
    if (granted) this.update();
  }

  private hold(bytes: number): void {
    this.held += bytes;
    this.total.add(this, bytes, this.held > 0);
  }

  /** Nothing held: the next request runs whatever the bounds (one request may exceed them). */
  private fits(bytes: number): boolean {
    return this.held === 0 || (this.held + bytes <= this.limit && this.total.fits(bytes));
  }

  update(): void {
    const paused = this.held >= this.limit || (this.held > 0 && this.total.full);
    if (paused === this.paused) return;
    this.paused = paused;
    this.total.pausedReading(this, paused);
    this.pauseReading(paused);
  }
}
