/**
 * Large writes straight to the device (O_DIRECT), around the page cache.
 *
 * Why: a buffered write copies into the page cache holding the data file's
 * inode lock, so the writers of one data file (every vdisk of a pool) copy
 * one at a time, and once the kernel writes back they queue behind it. On
 * the 2-core test host, 4 fio writers of 1 MiB, 5 s from a cold cache, ran
 * at 315-437 MiB/s into one file, 711-2284 MiB/s into four files, and about
 * 2 GiB/s into one file with O_DIRECT. A direct overwrite takes the inode
 * lock shared: the writes run side by side at the device's speed, and bulk
 * writes do not fill the host's page cache with what the VM caches itself.
 *
 * Which writes: a run whose position and length are multiples of ALIGN and
 * that is at least DIRECT_MIN long (a VM's large writes, restores). Smaller
 * writes and copy-ups stay buffered: there the page cache absorbs a burst
 * faster than the device takes it (nbdcopy's 256 KiB writes into one vdisk,
 * cold, no flush: 837-896 MiB/s buffered, 218-704 MiB/s direct; the same
 * with --flush).
 *
 * Durability does not change: a direct write is done when the device has it,
 * perhaps in its volatile cache, and the commit's fdatasync flushes that
 * cache before a map entry pointing at it commits (BlockDevice keeps the
 * write counted as unsynced). The kernel keeps the page cache coherent: a
 * direct write first writes back and drops cached pages of its range (a
 * stale page of a freed block included).
 *
 * Mixing direct writes with buffered I/O on one file is safe only while no
 * cached page over a block being written directly can hold its old bytes
 * after the write. The kernel drops the range's pages before and after the
 * write; the second drop fails only for a page someone holds at that
 * moment, and no one reads or writes a block the engine is writing (it is
 * new, owned by that write alone). What could still bring one in is a read
 * of a neighbouring block: readahead reads past it, in large folios that
 * span several blocks, one of them being read while the write ends. So the
 * agent's buffered descriptor is set POSIX_FADV_RANDOM (no readahead: a
 * read brings in exactly its own pages, order-0 folios; an RWF_NOWAIT read
 * that misses starts the read of just its own range too, as perf shows).
 * Where that advice cannot be given, direct writes stay off. The NBD relay
 * threads (nbd/relay/worker.mts) read through descriptors of their own,
 * with the kernel's default readahead; so can another process reading the
 * live data file (a copy of it): a page they bring in over a block being
 * written directly is dropped after the write unless held at that moment
 * (then the kernel logs a stale page cache warning).
 *
 * Where the filesystem refuses O_DIRECT (the open or a write fails with
 * EINVAL), or no aligned memory can be had (no koffi), direct writes are off
 * for the device and the caller writes buffered: same bytes, same result.
 * Cost: one copy of the payload into aligned memory (event loop), one pwrite
 * per MiB on the threadpool.
 */
import * as fs from 'node:fs';
import { libcFunction } from '../../native/libc';
import { ALIGN, ALIGNED_BYTES, giveAligned, takeAligned } from './aligned-buffers';

/** Runs at least this long go direct (sixteen 64 KiB blocks). */
export const DIRECT_MIN = 1024 * 1024;
/** linux/fadvise.h */
const POSIX_FADV_RANDOM = 1;

type Pwrite = (
  fd: number,
  buffer: Buffer,
  offset: number,
  length: number,
  position: number,
  done: (err: NodeJS.ErrnoException | null, written: number) => void,
) => void;

export class DirectWrites {
  private fd: number | null;
  /** Set once direct writes are refused or the device closes: no new one starts. */
  private off: boolean;
  /** Why they are off (null: on): a silent fallback to buffered writes would only show as slower writes. */
  private why: string | null;
  /** `write` calls under way: the fd is closed only once none is (a closed fd number can be reused by the next open). */
  private writing = 0;
  /** Bytes written around the page cache so far (/metrics: whether large writes really go direct). */
  bytesWritten = 0;

  /** `fd`: the data file opened with O_DIRECT, or null (off). `pwrite`: a test seam. */
  constructor(
    fd: number | null,
    private readonly pwrite: Pwrite = fs.write,
  ) {
    this.fd = fd;
    this.off = fd === null;
    this.why = fd === null ? 'O_DIRECT or POSIX_FADV_RANDOM unavailable here' : null;
  }

  /** Why direct writes are off, or null while they are on. */
  get offReason(): string | null {
    return this.off ? this.why : null;
  }

  private turnOff(why: string): void {
    if (!this.off) this.why = why;
    this.off = true;
  }

  /**
   * Opens `path` for direct writes, after advising `bufferedFd` (the device's
   * descriptor for everything else) POSIX_FADV_RANDOM; off (fd null) where
   * O_DIRECT is unknown or refused, or the advice cannot be given.
   */
  static open(path: string, bufferedFd: number): DirectWrites {
    const O_DIRECT = fs.constants.O_DIRECT;
    const fadvise = libcFunction('int posix_fadvise(int, int64_t, int64_t, int)');
    if (O_DIRECT === undefined || fadvise === null || fadvise(bufferedFd, 0, 0, POSIX_FADV_RANDOM) !== 0)
      return new DirectWrites(null);
    try {
      return new DirectWrites(fs.openSync(path, fs.constants.O_RDWR | O_DIRECT));
    } catch {
      return new DirectWrites(null);
    }
  }

  /** Whether a write of `length` bytes at byte `start` goes direct. */
  wants(start: number, length: number): boolean {
    return !this.off && length >= DIRECT_MIN && start % ALIGN === 0 && length % ALIGN === 0;
  }

  /**
   * Writes `parts` (`length` bytes in all) at byte `start`, piece by piece
   * (ALIGNED_BYTES each, all in flight at once). False: the device refused
   * direct writes (now off) and the caller must write it all buffered; an
   * I/O error is thrown once every piece has settled.
   */
  async write(parts: Buffer[], start: number, length: number): Promise<boolean> {
    const fd = this.fd;
    if (this.off || fd === null) return false;
    this.writing++;
    try {
      const done = await this.writePieces(fd, parts, start, length);
      if (done) this.bytesWritten += length;
      return done;
    } finally {
      this.writing--;
      this.closeIfIdle();
    }
  }

  /**
   * Writes `views` (`length` bytes in all, each view ALIGN-aligned in memory,
   * position and length: cut from `stageAligned` buffers) at byte `start`,
   * with one pwritev: a striped pool's share of a run that BlockDevice
   * copied into aligned memory once for all its files. False as `write`.
   */
  async writeStaged(views: Buffer[], start: number, length: number): Promise<boolean> {
    const fd = this.fd;
    if (this.off || fd === null) return false;
    this.writing++;
    try {
      const written = await new Promise<number>((resolve, reject) =>
        fs.writev(fd, views, start, (err, n) => (err ? reject(err) : resolve(n))),
      );
      if (written === length) {
        this.bytesWritten += length;
        return true;
      }
      this.turnOff(`a direct write of ${length} bytes wrote ${written}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException)?.code !== 'EINVAL') throw err;
      this.turnOff('the filesystem refused a direct write (EINVAL)');
    } finally {
      this.writing--;
      this.closeIfIdle();
    }
    // Refused or short: the buffered rewrite of the share lays the same bytes over it.
    this.closeIfIdle();
    return false;
  }

  private async writePieces(fd: number, parts: Buffer[], start: number, length: number): Promise<boolean> {
    const staged = stageAligned(parts, length);
    if (staged === null) {
      this.turnOff('no aligned memory');
      return false;
    }
    const pieceLength = (i: number) => Math.min(ALIGNED_BYTES, length - i * ALIGNED_BYTES);
    const results = await Promise.allSettled(
      staged.map(
        (buffer, i) =>
          new Promise<number>((resolve, reject) =>
            this.pwrite(fd, buffer, 0, pieceLength(i), start + i * ALIGNED_BYTES, (err, written) =>
              err ? reject(err) : resolve(written),
            ),
          ),
      ),
    );
    for (const buffer of staged) giveAligned(buffer);
    let refused: string | null = null;
    for (const [i, r] of results.entries()) {
      if (r.status === 'rejected') {
        if ((r.reason as NodeJS.ErrnoException)?.code !== 'EINVAL') throw r.reason;
        refused = 'the filesystem refused a direct write (EINVAL)';
      } else if (r.value !== pieceLength(i))
        refused = `a direct write of ${pieceLength(i)} bytes wrote ${r.value}`;
    }
    // A short or refused piece: the buffered rewrite of the whole run lays the same bytes over it.
    if (refused !== null) this.turnOff(refused);
    return refused === null;
  }

  /** No direct write starts from now on; the fd closes once the ones under way have settled. */
  close(): void {
    this.turnOff('the device closed');
    this.closeIfIdle();
  }

  private closeIfIdle(): void {
    if (!this.off || this.writing > 0 || this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * `parts` (`length` bytes) copied into aligned buffers (ALIGNED_BYTES each,
 * laid end to end: bytes past `length` unspecified), or null where none can
 * be had; give each back with `giveAligned` once no write uses it.
 */
export function stageAligned(parts: Buffer[], length: number): Buffer[] | null {
  const staged: Buffer[] = [];
  for (let at = 0; at < length; at += ALIGNED_BYTES) {
    const buffer = takeAligned();
    if (buffer === null) {
      for (const b of staged) giveAligned(b);
      return null;
    }
    copyRange(parts, at, Math.min(ALIGNED_BYTES, length - at), buffer);
    staged.push(buffer);
  }
  return staged;
}

/** Copies bytes [from, from + length) of `parts`, laid end to end, into `target`. */
function copyRange(parts: Buffer[], from: number, length: number, target: Buffer): void {
  let skip = from;
  let at = 0;
  for (const part of parts) {
    if (at === length) return;
    if (skip >= part.length) {
      skip -= part.length;
      continue;
    }
    at += part.copy(target, at, skip, Math.min(part.length, skip + length - at));
    skip = 0;
  }
}
