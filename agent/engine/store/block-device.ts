/**
 * The block device: fixed-size physical blocks in a data file or raw device.
 *
 * Contract: physical block p (p ≥ 1) lives at byte (p - 1) × blockSize.
 * `write` is acknowledged when the kernel has it; `syncData` makes every
 * acknowledged write durable. Reads past the end of a sparse file return zeros.
 * Every call goes through the fault seam first, so drills can inject EIO,
 * ENOSPC and short writes without touching the engine. A short write is
 * finished here, unseen by the engine; one that stops making progress is
 * IO_ERROR.
 *
 * `writeAsync` does the same on libuv's threadpool (fs.writev), at most
 * two at once for a regular file, whose inode lock lets one run at a time
 * anyway (write-lanes.ts); a large aligned one goes around the page cache
 * with O_DIRECT, in parallel (direct-writes.ts); `readAsync` too, except for what
 * the page cache holds: that is read on the event loop (`readNow`), with
 * RWF_NOWAIT where the host has it (nowait-read.ts), so such a read does
 * not wait for a disk read. Small writes may run on the event
 * loop while writes do not stall and the host's dirty pages are far below
 * the kernel's throttling point (`writesFast`, `writeWatched`,
 * dirty-pages.ts). The fault seam runs first for them too. The pool size is UV_THREADPOOL_SIZE, which
 * bin/snapsync-agent sets (16 unless given) before anything loads.
 */
import * as fs from 'node:fs';
import { HOST_OUT_OF_SPACE, IO_ERROR } from '../errors';
import { DirectWrites } from './direct-writes';
import { DirtyPages } from './dirty-pages';
import { type NowaitRead, nowaitReader, WOULD_BLOCK } from './nowait-read';
import { WriteLanes } from './write-lanes';

export type DeviceOp = 'read' | 'write' | 'sync';

/**
 * A read on the event loop faster than HIT_MICROS, plus the time to copy its
 * bytes out of the page cache at HIT_BYTES_PER_MICRO, was a hit (a disk read
 * takes longer). Without the copy time every large read (nbdcopy asks 256 KiB)
 * would pay for a getrusage call.
 */
const HIT_MICROS = 20;
const HIT_BYTES_PER_MICRO = 2048;
/**
 * Async reads sent to the threadpool after one on the event loop went to the
 * disk, before the event loop is tried again. Timed reads (no RWF_NOWAIT):
 * each try may wait for the disk once, so tries are rare. RWF_NOWAIT: a try
 * costs a system call that copies nothing, so the loop soon tries again and
 * a working set that came back into the cache is read there.
 */
const SLOW_READ_BACKOFF = 256;
const NOWAIT_MISS_BACKOFF = 16;
/**
 * A write on the event loop slower than this stalled in the kernel (dirty-page
 * throttling, a device that writes through): the next SLOW_WRITE_BACKOFF
 * writes go to the threadpool, where such stalls do not stop the loop.
 */
const SLOW_WRITE_MICROS = 1000;
const SLOW_WRITE_BACKOFF = 256;

/** Threadpool writes of a data file at once (write-lanes.ts: its inode lock lets one run at a time). */
const FILE_WRITE_LANES = 2;

/**
 * Called before every device operation; throw an errno-style error to inject a
 * fault. For a write, return a byte count to make it short: each system call
 * of that write then moves at most that many bytes (0: none).
 */
export type FaultInjector =
  | ((op: DeviceOp, block: number, count: number) => void)
  | ((op: DeviceOp, block: number, count: number) => number | undefined);

export class BlockDevice {
  readonly path: string;
  readonly blockSize: number;
  private fd: number;
  private faults: FaultInjector | null = null;
  /** Writes since the last completed sync: a commit with none skips the fdatasync. */
  private unsynced = false;
  /** Async syncs under way: until they finish, their writes are not known durable. */
  private asyncSyncs = 0;
  /**
   * Asked before a write that would make the data file longer (so take new
   * host space); false refuses it with OUT_OF_SPACE. Null: always allowed.
   * The pool sets it when the data file shares a filesystem with the metadata.
   */
  growthGate: (() => boolean) | null = null;
  /**
   * Asked before every write with its first block and block count; throws to
   * refuse it before anything reaches the device. Null: all allowed. Set
   * during a rehearsal (EngineCore.rehearse), which may write only into blocks it took.
   */
  writeGuard: ((block: number, count: number) => void) | null = null;
  /** Async reads still to send to the threadpool since one on the event loop went to the disk (readAsync). */
  private threadpoolReads = 0;
  /** Writes still to send to the threadpool since one on the event loop stalled (writeWatched). */
  private threadpoolWrites = 0;
  /** Whether the kernel is far from throttling writers (dirty-pages.ts): else no write on the event loop. */
  private readonly dirtyPages = new DirtyPages();
  /**
   * The process's block inputs (ru_inblock) at the last check. Reads on the
   * threadpool move it too, so the first slow read after them may count as
   * a miss once more: a second round on the threadpool, never a wrong byte.
   */
  private blockInputs = 0;
  /** The data file's length as far as we know (grows with writes past it). */
  private fileBytes: number;
  /** Page-cache-only reads of the data file, or null where the host has none (then event-loop reads are timed). */
  private readonly nowait: NowaitRead | null;
  /** Limits threadpool writes of a regular file; null for a block device (no inode lock on its writes). */
  private readonly lanes: WriteLanes | null;
  /** Large aligned writes around the page cache (direct-writes.ts); off where O_DIRECT is refused. */
  private readonly direct: DirectWrites;

  constructor(path: string, blockSize: number, flags: 'r+' | 'w+' = 'r+') {
    this.path = path;
    this.blockSize = blockSize;
    try {
      this.fd = fs.openSync(path, flags);
      const st = fs.fstatSync(this.fd);
      this.fileBytes = st.size;
      this.lanes = st.isBlockDevice() ? null : new WriteLanes(FILE_WRITE_LANES);
    } catch (err) {
      throw IO_ERROR('open data device', err, { path });
    }
    this.nowait = nowaitReader(this.fd);
    this.direct = DirectWrites.open(path, this.fd);
  }

  /** Whether reads on the event loop do not wait for disk reads (RWF_NOWAIT works here). */
  get readsNeverWait(): boolean {
    return this.nowait !== null;
  }

  /** True if the data file and `dir` are on one filesystem (then data can fill what metadata needs). */
  sharesFilesystemWith(dir: string): boolean {
    const st = fs.fstatSync(this.fd);
    return st.isFile() && st.dev === fs.statSync(dir).dev;
  }

  /** Installs (or with null removes) a fault injector. Test and drill seam. */
  setFaultInjector(injector: FaultInjector | null): void {
    this.faults = injector;
    this.onFaultsChanged?.();
  }

  /** Whether a fault injector is installed: reads must then all come through this device. */
  get faulty(): boolean {
    return this.faults !== null;
  }

  /** Called when a fault injector is installed or removed (readers outside the engine drop what they hold). */
  onFaultsChanged: (() => void) | null = null;

  /**
   * Reads `length` bytes starting `offset` bytes into physical block `block`
   * (may run on into the following blocks) into `target` at `targetOffset`.
   */
  read(block: number, offset: number, length: number, target: Buffer, targetOffset: number): void {
    const start = (block - 1) * this.blockSize + offset;
    try {
      this.faults?.('read', block, Math.ceil((offset + length) / this.blockSize));
      let done = 0;
      while (done < length) {
        const n = fs.readSync(this.fd, target, targetOffset + done, length - done, start + done);
        if (n === 0) break;
        done += n;
      }
      // Past the end of a sparse data file: never written, so zeros.
      if (done < length) target.fill(0, targetOffset + done, targetOffset + length);
    } catch (err) {
      throw IO_ERROR('read', err, { block, offset, length });
    }
  }

  /**
   * Writes `parts` back to back, starting `offset` bytes into physical block
   * `block` (may run on into the following blocks): one pwritev, no copying.
   */
  write(block: number, offset: number, parts: Buffer[]): void {
    const w = this.placeWrite(block, offset, parts);
    try {
      const limit = this.writeFault(w);
      let done = fs.writevSync(this.fd, limit < w.length ? truncate(parts, limit) : parts, w.start);
      // Rare short write: finish the rest byte range by byte range.
      const all = done < w.length ? Buffer.concat(parts) : null;
      while (all !== null && done < w.length) {
        const n = fs.writeSync(this.fd, all, done, Math.min(w.length - done, limit), w.start + done);
        done += madeProgress(n, done, w);
      }
      this.wrote(w);
    } catch (err) {
      throw this.writeFailed(err, w);
    }
  }

  /** Makes every acknowledged write durable. */
  syncData(): void {
    if (!this.unsynced && this.asyncSyncs === 0) return;
    try {
      this.faults?.('sync', 0, 0);
      this.unsynced = false;
      fs.fdatasyncSync(this.fd);
    } catch (err) {
      this.unsynced = true;
      throw deviceError('sync', err, 0, 0);
    }
  }

  /**
   * `read` for the async path. A read the page cache answers costs a few µs
   * on the event loop and several times that through the threadpool, so
   * what the cache holds is read there (`readNow`); a read that would go to
   * the disk goes to the threadpool, where many wait on the disk at once,
   * and so do the next reads for a while (NOWAIT_MISS_BACKOFF, or
   * SLOW_READ_BACKOFF without RWF_NOWAIT); then the event loop is tried
   * again. The metadata is settled before the call; only the bytes move.
   * `threadpool`: read there whatever the cache says (a large read's copy is worth another core).
   */
  async readAsync(
    block: number,
    offset: number,
    length: number,
    target: Buffer,
    targetOffset: number,
    threadpool = false,
  ) {
    if (threadpool) return this.readOnThreadpool(block, offset, length, target, targetOffset);
    if (this.threadpoolReads > 0) {
      this.threadpoolReads--;
      await this.readOnThreadpool(block, offset, length, target, targetOffset);
      return;
    }
    if (!this.readNow(block, offset, length, target, targetOffset))
      await this.readOnThreadpool(block, offset, length, target, targetOffset);
  }

  /** Whether reads are page-cache hits lately: then a caller may try one on the event loop (`readNow`). */
  get readsHit(): boolean {
    return this.threadpoolReads === 0;
  }

  /**
   * `read` now, on the event loop, of what the page cache holds: true when
   * all of it was there (`target` filled); false when part was not (then
   * `target` holds some of the bytes, and the caller reads again off the
   * loop). With RWF_NOWAIT it does not wait for a disk read. Without it the read
   * is done and timed (`readWatched`): always true, and a miss waits once.
   */
  readNow(block: number, offset: number, length: number, target: Buffer, targetOffset: number): boolean {
    if (this.nowait === null) {
      this.readWatched(block, offset, length, target, targetOffset);
      return true;
    }
    const start = (block - 1) * this.blockSize + offset;
    try {
      this.faults?.('read', block, Math.ceil((offset + length) / this.blockSize));
      let done = 0;
      while (done < length) {
        const n = this.nowait(target, targetOffset + done, length - done, start + done);
        if (n === WOULD_BLOCK) {
          this.threadpoolReads = NOWAIT_MISS_BACKOFF;
          return false;
        }
        if (n === 0) break;
        done += n;
      }
      if (done < length) target.fill(0, targetOffset + done, targetOffset + length);
      return true;
    } catch (err) {
      throw IO_ERROR('read', err, { block, offset, length });
    }
  }

  /** `read` on the event loop that notes whether it went to the disk (then the next reads go to the threadpool). */
  private readWatched(
    block: number,
    offset: number,
    length: number,
    target: Buffer,
    targetOffset: number,
  ): void {
    const started = performance.now();
    this.read(block, offset, length, target, targetOffset);
    // A fast read was a hit; only a slower one pays for getrusage (µs) to learn whether it was.
    if ((performance.now() - started) * 1000 < HIT_MICROS + length / HIT_BYTES_PER_MICRO) return;
    const blockInputs = process.resourceUsage().fsRead;
    if (blockInputs > this.blockInputs) this.threadpoolReads = SLOW_READ_BACKOFF;
    this.blockInputs = blockInputs;
  }

  private async readOnThreadpool(
    block: number,
    offset: number,
    length: number,
    target: Buffer,
    targetOffset: number,
  ): Promise<void> {
    const start = (block - 1) * this.blockSize + offset;
    try {
      this.faults?.('read', block, Math.ceil((offset + length) / this.blockSize));
      let done = 0;
      while (done < length) {
        const n = await readAt(this.fd, target, targetOffset + done, length - done, start + done);
        if (n === 0) break;
        done += n;
      }
      if (done < length) target.fill(0, targetOffset + done, targetOffset + length);
    } catch (err) {
      throw IO_ERROR('read', err, { block, offset, length });
    }
  }

  /**
   * Whether writes complete quickly lately: then a caller may write a small
   * range on the event loop (`writeWatched`). A buffered write of a few KiB
   * costs a few µs there and several times that through the threadpool.
   */
  get writesFast(): boolean {
    return this.threadpoolWrites === 0 && this.dirtyPages.low;
  }

  /** `write` on the event loop that notes whether it stalled (then the next writes go to the threadpool). */
  writeWatched(block: number, offset: number, parts: Buffer[]): void {
    const started = performance.now();
    this.write(block, offset, parts);
    if ((performance.now() - started) * 1000 >= SLOW_WRITE_MICROS) this.threadpoolWrites = SLOW_WRITE_BACKOFF;
  }

  /** `write` on the threadpool (one pwritev); the caller stages nothing that points at it until it resolves. */
  async writeAsync(block: number, offset: number, parts: Buffer[]): Promise<void> {
    if (this.threadpoolWrites > 0) this.threadpoolWrites--;
    const w = this.placeWrite(block, offset, parts);
    try {
      const limit = this.writeFault(w);
      const direct = limit === Number.POSITIVE_INFINITY && this.direct.wants(w.start, w.length);
      if (!direct || !(await this.direct.write(parts, w.start, w.length))) {
        const write = () => this.writeOnThreadpool(w, parts, limit);
        await (this.lanes ? this.lanes.run(write) : write());
      }
      this.wrote(w);
    } catch (err) {
      throw this.writeFailed(err, w);
    } finally {
      // A sync that began while this write ran did not cover it: the next one must not be skipped.
      this.unsynced = true;
    }
  }

  private async writeOnThreadpool(w: PlacedWrite, parts: Buffer[], limit: number): Promise<void> {
    let done = await writevAt(this.fd, limit < w.length ? truncate(parts, limit) : parts, w.start);
    const all = done < w.length ? Buffer.concat(parts) : null;
    while (all !== null && done < w.length) {
      const piece = all.subarray(done, done + Math.min(w.length - done, limit));
      done += madeProgress(await writevAt(this.fd, [piece], w.start + done), done, w);
    }
  }

  /** Where a write goes; refuses one that would grow the data file while the growth gate says no. */
  private placeWrite(block: number, offset: number, parts: Buffer[]): PlacedWrite {
    let length = 0;
    for (const part of parts) length += part.length;
    const start = (block - 1) * this.blockSize + offset;
    this.writeGuard?.(block, Math.ceil((offset + length) / this.blockSize));
    if (start + length > this.fileBytes && this.growthGate && !this.growthGate())
      throw HOST_OUT_OF_SPACE('data write: the metadata reserve is in use, so the data file may not grow');
    return { block, start, length, count: Math.ceil((offset + length) / this.blockSize) };
  }

  /** The fault seam for a write: the byte limit per system call (infinite unless a drill makes it short). */
  private writeFault(w: PlacedWrite): number {
    const limit = this.faults?.('write', w.block, w.count) ?? Number.POSITIVE_INFINITY;
    this.unsynced = true;
    return limit;
  }

  private wrote(w: PlacedWrite): void {
    if (w.start + w.length > this.fileBytes) this.fileBytes = w.start + w.length;
  }

  private writeFailed(err: unknown, w: PlacedWrite) {
    this.fileBytes = Math.max(this.fileBytes, fileLength(this.fd));
    return deviceError('write', err, w.block, w.count);
  }

  /** Same as syncData, off the event loop: most of a flush's wait happens here. */
  async syncDataAsync(): Promise<void> {
    if (!this.unsynced) return;
    try {
      this.faults?.('sync', 0, 0);
      // Cleared before the call: writes that land while it runs set it again.
      this.unsynced = false;
      this.asyncSyncs++;
      try {
        await new Promise<void>((resolve, reject) =>
          fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve())),
        );
      } finally {
        this.asyncSyncs--;
      }
    } catch (err) {
      this.unsynced = true;
      throw deviceError('sync', err, 0, 0);
    }
  }

  close(): void {
    this.direct.close();
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function readAt(fd: number, target: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.read(fd, target, at, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

function writevAt(fd: number, parts: Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.writev(fd, parts, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

interface PlacedWrite {
  block: number;
  /** Byte position in the data file. */
  start: number;
  length: number;
  /** Blocks it touches (for faults and errors). */
  count: number;
}

/** Bytes a system call of a short-write loop moved; none is EIO (a write that stops making progress). */
function madeProgress(n: number, done: number, w: PlacedWrite): number {
  if (n <= 0) throw Object.assign(new Error(`short write: ${done} of ${w.length} bytes`), { code: 'EIO' });
  return n;
}

/** The first `bytes` bytes of `parts`, as views. */
function truncate(parts: Buffer[], bytes: number): Buffer[] {
  const out: Buffer[] = [];
  for (const part of parts) {
    if (bytes <= 0) break;
    out.push(part.subarray(0, bytes));
    bytes -= part.length;
  }
  return out;
}

function deviceError(op: DeviceOp, err: unknown, block: number, count: number) {
  if ((err as NodeJS.ErrnoException)?.code === 'ENOSPC') {
    const e = HOST_OUT_OF_SPACE(`data ${op}`, err);
    e.details.device = 'data device has no room (ENOSPC)';
    e.details.needed = count;
    return e;
  }
  return IO_ERROR(op, err, { block, count });
}

function fileLength(fd: number): number {
  try {
    return fs.fstatSync(fd).size;
  } catch {
    return 0;
  }
}

/** Size in bytes of a regular file or block device. */
export function deviceSize(path: string): number {
  const st = fs.statSync(path);
  if (st.isBlockDevice()) {
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((Math.floor(st.rdev / 1048576) & 0xfff00) >>> 0);
    const sectors = Number(fs.readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim());
    return sectors * 512;
  }
  return st.size;
}
