/**
 * The block device: fixed-size physical blocks in a data file or raw device,
 * or striped over several data files (data-layout.ts; data-file.ts does the
 * system calls of each).
 *
 * Contract: physical block p (p ≥ 1) lives where DataLayout puts it: with
 * one file, at byte (p - 1) × blockSize. A request spanning several files
 * is several system calls, run side by side on the threadpool; it is done
 * (or failed) once all of them settled, so no buffer is reused under one.
 * `write` is acknowledged when the kernel has it; `syncData` makes every
 * acknowledged write durable. Reads past the end of a sparse file return zeros.
 * Every call goes through the fault seam first, so drills can inject EIO,
 * ENOSPC and short writes without touching the engine. A short write is
 * finished here, unseen by the engine; one that stops making progress is
 * IO_ERROR.
 *
 * `writeAsync` does the same on libuv's threadpool (fs.writev), at most
 * two at once for each regular data file, whose inode lock lets one run at a time
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
import { DATA_IN_USE, HOST_OUT_OF_SPACE, IO_ERROR } from '../errors';
import { giveAligned } from './aligned-buffers';
import { DataFile } from './data-file';
import { DataLayout, type FileShare, type Segment, sliceParts } from './data-layout';
import { stageAligned } from './direct-writes';
import { DirtyPages } from './dirty-pages';

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

/**
 * Called before every device operation; throw an errno-style error to inject a
 * fault. For a write, return a byte count to make it short: each system call
 * of that write then moves at most that many bytes (0: none).
 */
export type FaultInjector =
  | ((op: DeviceOp, block: number, count: number) => void)
  | ((op: DeviceOp, block: number, count: number) => number | undefined);

export class BlockDevice {
  /** The first data file (the pool record's `dataPath`). */
  readonly path: string;
  /** Every data file, file i of the layout at index i. */
  readonly paths: string[];
  readonly blockSize: number;
  readonly layout: DataLayout;
  private readonly files: DataFile[] = [];
  private faults: FaultInjector | null = null;
  /**
   * Asked before a write that would make a data file longer (so take new
   * host space); false refuses it with OUT_OF_SPACE. Null: always allowed.
   * The pool sets it when the data files share a filesystem with the metadata.
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
  /** Whether every file has page-cache-only reads (then event-loop reads never wait; else they are timed). */
  private readonly nowait: boolean;

  /** `paths`: the data files in layout order (one path: a single data file or raw device). */
  constructor(paths: string | string[], blockSize: number, flags: 'r+' | 'w+' = 'r+') {
    this.paths = typeof paths === 'string' ? [paths] : paths;
    this.path = this.paths[0]!;
    this.blockSize = blockSize;
    this.layout = new DataLayout(this.paths.length, blockSize);
    for (const file of this.paths) {
      try {
        this.files.push(new DataFile(file, flags));
      } catch (err) {
        this.close();
        if ((err as NodeJS.ErrnoException).code === 'EBUSY') throw DATA_IN_USE(file);
        throw IO_ERROR(`open data file ${file}`, err, { path: file });
      }
    }
    this.nowait = this.files.every((f) => f.nowait !== null);
  }

  /** Bytes large aligned writes put around the page cache (direct-writes.ts), over every data file. */
  get directBytesWritten(): number {
    let bytes = 0;
    for (const file of this.files) bytes += file.direct.bytesWritten;
    return bytes;
  }

  /** Why large aligned writes no longer go around the page cache (direct-writes.ts), or null while they do. */
  get directWritesOff(): string | null {
    for (const file of this.files) if (file.direct.offReason !== null) return file.direct.offReason;
    return null;
  }

  /** Whether reads on the event loop do not wait for disk reads (RWF_NOWAIT works here). */
  get readsNeverWait(): boolean {
    return this.nowait;
  }

  /** True if the data files and `dir` are on one filesystem (then data can fill what metadata needs). */
  sharesFilesystemWith(dir: string): boolean {
    return this.files.some((f) => f.sharesFilesystemWith(dir));
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
    try {
      this.faults?.('read', block, this.blocksOf(offset, length));
      for (const s of this.layout.segments(block, offset, length))
        this.files[s.file]!.read(s.position, s.length, target, targetOffset + s.at);
    } catch (err) {
      throw readError(err, block, offset, length);
    }
  }

  /**
   * Writes `parts` back to back, starting `offset` bytes into physical block
   * `block` (may run on into the following blocks): one pwritev per data file, no copying.
   */
  write(block: number, offset: number, parts: Buffer[]): void {
    const w = this.placeWrite(block, offset, parts);
    try {
      const limit = this.writeFault(w);
      for (const share of w.shares)
        this.files[share.file]!.write(partsOf(parts, share, w), share.position, share.length, limit);
    } catch (err) {
      throw deviceError('write', err, w.block, w.count);
    }
  }

  /** Makes every acknowledged write durable. */
  syncData(): void {
    if (!this.files.some((f) => f.needsSync)) return;
    try {
      this.faults?.('sync', 0, 0);
      for (const file of this.files) file.syncData();
    } catch (err) {
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
    if (!this.nowait) {
      this.readWatched(block, offset, length, target, targetOffset);
      return true;
    }
    try {
      this.faults?.('read', block, this.blocksOf(offset, length));
      for (const s of this.layout.segments(block, offset, length))
        if (!this.files[s.file]!.readCached(s.position, s.length, target, targetOffset + s.at)) {
          this.threadpoolReads = NOWAIT_MISS_BACKOFF;
          return false;
        }
      return true;
    } catch (err) {
      throw readError(err, block, offset, length);
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
    try {
      this.faults?.('read', block, this.blocksOf(offset, length));
      await settleAll(
        this.layout
          .segments(block, offset, length)
          .map((s) => this.files[s.file]!.readAsync(s.position, s.length, target, targetOffset + s.at)),
      );
    } catch (err) {
      throw readError(err, block, offset, length);
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

  /**
   * `write` on the threadpool (a pwritev per data file, side by side); the
   * caller stages nothing that points at it until it resolves. A large
   * aligned run goes around the page cache (direct-writes.ts), each file's share of it too.
   */
  async writeAsync(block: number, offset: number, parts: Buffer[]): Promise<void> {
    if (this.threadpoolWrites > 0) this.threadpoolWrites--;
    const w = this.placeWrite(block, offset, parts);
    try {
      const limit = this.writeFault(w);
      const first = w.shares[0]!;
      const direct =
        limit === Number.POSITIVE_INFINITY && this.files[first.file]!.direct.wants(first.position, w.length);
      // Striped and direct: one copy into aligned memory, each file's share written from views of it.
      const staged = direct && w.shares.length > 1 ? stageAligned(parts, w.length) : null;
      try {
        await settleAll(
          w.shares.map((share) => {
            const views =
              staged && share.segments.flatMap((s: Segment) => sliceParts(staged, s.at, s.length));
            return this.files[share.file]!.writeAsync(
              partsOf(parts, share, w),
              share.position,
              share.length,
              limit,
              views ?? direct,
            );
          }),
        );
      } finally {
        for (const buffer of staged ?? []) giveAligned(buffer);
      }
    } catch (err) {
      throw deviceError('write', err, w.block, w.count);
    }
  }

  /** Where a write goes; refuses one that would grow a data file while the growth gate says no. */
  private placeWrite(block: number, offset: number, parts: Buffer[]): PlacedWrite {
    let length = 0;
    for (const part of parts) length += part.length;
    const count = this.blocksOf(offset, length);
    this.writeGuard?.(block, count);
    const shares = this.layout.shares(block, offset, length);
    if (
      this.growthGate &&
      shares.some((s) => this.files[s.file]!.wouldGrow(s.position, s.length)) &&
      !this.growthGate()
    )
      throw HOST_OUT_OF_SPACE('data write: the metadata reserve is in use, so the data file may not grow');
    return { block, length, count, shares };
  }

  /** The fault seam for a write: the byte limit per system call (infinite unless a drill makes it short). */
  private writeFault(w: PlacedWrite): number {
    return this.faults?.('write', w.block, w.count) ?? Number.POSITIVE_INFINITY;
  }

  /** Blocks touched by `length` bytes from `offset` bytes into a block (for faults and errors). */
  private blocksOf(offset: number, length: number): number {
    return Math.ceil((offset + length) / this.blockSize);
  }

  /** Same as syncData, off the event loop, every data file at once: most of a flush's wait happens here. */
  async syncDataAsync(): Promise<void> {
    const files = this.files.filter((f) => f.unsyncedWrites);
    if (files.length === 0) return;
    try {
      this.faults?.('sync', 0, 0);
      await settleAll(files.map((f) => f.syncDataAsync()));
    } catch (err) {
      throw deviceError('sync', err, 0, 0);
    }
  }

  close(): void {
    for (const file of this.files) file.close();
  }
}

interface PlacedWrite {
  block: number;
  length: number;
  /** Blocks it touches (for faults and errors). */
  count: number;
  /** Each data file's share of it. */
  shares: FileShare[];
}

/** The parts of a write that go to one file: the whole write with one file, else views of its segments. */
function partsOf(parts: Buffer[], share: FileShare, w: PlacedWrite): Buffer[] {
  if (share.length === w.length) return parts;
  return share.segments.flatMap((s: Segment) => sliceParts(parts, s.at, s.length));
}

/** Waits for every promise to settle (no buffer may be reused while a system call still has it); throws the first failure. */
async function settleAll(work: Promise<void>[]): Promise<void> {
  if (work.length === 1) return work[0];
  const results = await Promise.allSettled(work);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

/** IO_ERROR of a read; one that met a file's end (data-file.ts) names the file and why. */
function readError(err: unknown, block: number, offset: number, length: number) {
  const path = (err as NodeJS.ErrnoException)?.path;
  if (path === undefined) return IO_ERROR('read', err, { block, offset, length });
  return IO_ERROR(`read of ${path}`, err, { block, offset, length, path, reason: (err as Error).message });
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

/** Size in bytes of a regular file or block device. */
export function deviceSize(path: string): number {
  return statSize(fs.statSync(path));
}

/** Size in bytes of what `st` describes: a block device's from sysfs. */
export function statSize(st: fs.Stats): number {
  if (!st.isBlockDevice()) return st.size;
  return Number(fs.readFileSync(`/sys/dev/block/${deviceId(st.rdev)}/size`, 'utf8').trim()) * 512;
}

/** `major:minor` of a device number as `stat` gives it (Linux's encoding, as glibc's major()/minor()). */
export function deviceId(rdev: number): string {
  const major = Math.floor(rdev / 0x100) & 0xfff;
  const minor = (rdev & 0xff) | (Math.floor(rdev / 0x1000) & 0xfff00);
  return `${major}:${minor}`;
}
