/**
 * At most `lanes` writes of the data file on the threadpool at once, the
 * rest waiting in arrival order. Linux holds a regular file's inode lock for
 * the whole of a buffered write(2) (ext4, xfs and btrfs alike), so writes to
 * the pool's one data file run one at a time however many are in flight;
 * more in flight only wait for the lock, spinning on it while its holder runs
 * (on the 2-core test host a sixth of the CPU, with four clients writing
 * 1 MiB each), and keep threadpool threads that reads need. Two lanes: one
 * write in the kernel, the next ready. A raw block device takes no such
 * lock: BlockDevice gives it no limit.
 *
 * Contract: `run(fn)` starts `fn` once a lane is free (first come, first
 * served) and holds the lane until the promise `fn` returns settles.
 * Cost: O(1) per write; a waiting write holds its buffers meanwhile.
 */
export class WriteLanes {
  private busy = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly lanes: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy < this.lanes) this.busy++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      // The lane passes straight to the next waiter, so no newcomer slips in between.
      const next = this.waiting.shift();
      if (next) next();
      else this.busy--;
    }
  }

  /** Writes waiting for a lane now. */
  get queued(): number {
    return this.waiting.length;
  }
}
