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
 * Cost: two counter updates per reply; a socket pause/resume at the edges.
 */
export class ConnectionBytes {
  private held = 0;
  private readonly waiting: Array<{ bytes: number; resolve: () => void }> = [];
  private paused = false;

  constructor(
    /** Bytes held above which the connection's frames are no longer read. */
    private readonly limit: number,
    /** Stops (true) or resumes (false) reading the connection's frames. */
    private readonly pauseReading: (paused: boolean) => void,
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
    return new Promise((resolve) => this.waiting.push({ bytes, resolve }));
  }

  /** Holds `bytes` now (what has already arrived or been made). */
  take(bytes: number): void {
    this.held += bytes;
    this.update();
  }

  release(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!;
      this.held += next.bytes;
      next.resolve();
    }
    this.update();
  }

  private fits(bytes: number): boolean {
    return this.held === 0 || this.held + bytes <= this.limit;
  }

  private update(): void {
    const paused = this.held >= this.limit;
    if (paused === this.paused) return;
    this.paused = paused;
    this.pauseReading(paused);
  }
}
