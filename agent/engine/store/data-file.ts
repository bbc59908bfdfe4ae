/**
 * One data file (or raw device) of a pool, addressed by byte position:
 * the system calls behind BlockDevice, which maps blocks to files
 * (data-layout.ts), checks faults and guards, and names errors.
 *
 * Contract: `read*` read only what was written (the engine reads mapped
 * blocks, each written whole), so one that meets the end of the file is
 * EIO: a file cut short, never zeros; a write is done when the kernel has it, finished here if the
 * kernel takes it in parts (a call that moves nothing is EIO); `syncData*`
 * make every write done before the call durable. Errors are the raw errno
 * errors (EBUSY: another pool holds the file or device): the caller names them.
 *
 * Threadpool writes of a regular file go through two lanes (write-lanes.ts:
 * its inode lock lets one run at a time anyway); a large aligned one goes
 * around the page cache with O_DIRECT (direct-writes.ts); reads with
 * RWF_NOWAIT answer only from the page cache (nowait-read.ts).
 */
import * as fs from 'node:fs';
import { claimBackingFiles, openClaimed } from './data-claim';
import { DirectWrites } from './direct-writes';
import { type NowaitRead, nowaitReader, WOULD_BLOCK } from './nowait-read';
import { WriteLanes } from './write-lanes';

/** Threadpool writes of a data file at once (write-lanes.ts: its inode lock lets one run at a time). */
const FILE_WRITE_LANES = 2;

export class DataFile {
  private fd: number;
  /** The file's length as far as we know (grows with writes past it). */
  private fileBytes: number;
  /** Writes since the last completed sync: a sync with none skips the fdatasync. */
  private unsynced = false;
  /** Async syncs under way: until they finish, their writes are not known durable. */
  private asyncSyncs = 0;
  /** Page-cache-only reads, or null where the host has none. */
  readonly nowait: NowaitRead | null;
  /** Limits threadpool writes of a regular file; null for a block device (no inode lock on its writes). */
  private readonly lanes: WriteLanes | null;
  /** Large aligned writes around the page cache; off where O_DIRECT is refused. */
  readonly direct: DirectWrites;

  /** Throws the open's errno error. */
  constructor(
    readonly path: string,
    flags: 'r+' | 'w+' = 'r+',
  ) {
    // Claimed: no other pool can open it while this one has it (data-claim.ts).
    this.fd = openClaimed(path, flags);
    try {
      const st = fs.fstatSync(this.fd);
      if (st.isBlockDevice()) this.backingClaims = claimBackingFiles(st.rdev);
      this.fileBytes = st.size;
      this.lanes = st.isBlockDevice() ? null : new WriteLanes(FILE_WRITE_LANES);
      this.nowait = nowaitReader(this.fd);
      this.direct = DirectWrites.open(path, this.fd);
    } catch (err) {
      for (const fd of this.backingClaims) fs.closeSync(fd);
      fs.closeSync(this.fd);
      throw err;
    }
  }

  /** Descriptors holding the flock on a loop device's backing files (data-claim.ts), closed with the file. */
  private backingClaims: number[] = [];

  /** True if this file and `dir` are on one filesystem (then data can fill what metadata needs). */
  sharesFilesystemWith(dir: string): boolean {
    const st = fs.fstatSync(this.fd);
    return st.isFile() && st.dev === fs.statSync(dir).dev;
  }

  /** Whether a write of `length` bytes at `position` makes the file longer (takes new host space). */
  wouldGrow(position: number, length: number): boolean {
    return position + length > this.fileBytes;
  }

  read(position: number, length: number, target: Buffer, at: number): void {
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, target, at + done, length - done, position + done);
      if (n === 0) throw pastEnd(this.path, position + done);
      done += n;
    }
  }

  /** `read` of what the page cache holds (needs `nowait`): false when part of it is not there. */
  readCached(position: number, length: number, target: Buffer, at: number): boolean {
    const nowait = this.nowait!;
    let done = 0;
    while (done < length) {
      const n = nowait(target, at + done, length - done, position + done);
      if (n === WOULD_BLOCK) return false;
      if (n === 0) throw pastEnd(this.path, position + done);
      done += n;
    }
    return true;
  }

  /** `read` on the threadpool. */
  async readAsync(position: number, length: number, target: Buffer, at: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const n = await readAt(this.fd, target, at + done, length - done, position + done);
      if (n === 0) throw pastEnd(this.path, position + done);
      done += n;
    }
  }

  /**
   * Writes `parts` (`length` bytes) at `position`: one pwritev, no copying.
   * `limit`: the most bytes a system call may move (a drill's short writes).
   */
  write(parts: Buffer[], position: number, length: number, limit: number): void {
    this.unsynced = true;
    try {
      let done = fs.writevSync(this.fd, limit < length ? truncate(parts, limit) : parts, position);
      // Rare short write: finish the rest byte range by byte range.
      const all = done < length ? Buffer.concat(parts) : null;
      while (all !== null && done < length) {
        const n = fs.writeSync(this.fd, all, done, Math.min(length - done, limit), position + done);
        done += madeProgress(n, done, length);
      }
      this.wrote(position, length);
    } catch (err) {
      this.writeFailed();
      throw err;
    }
  }

  /**
   * `write` on the threadpool. `direct`: false, written buffered; true, it
   * may go around the page cache (direct-writes.ts `write`, which copies it
   * into aligned memory); views of aligned memory holding the same bytes
   * (`stageAligned`), written direct from them (`writeStaged`). Where the
   * file refuses a direct write, `parts` are written buffered.
   */
  async writeAsync(
    parts: Buffer[],
    position: number,
    length: number,
    limit: number,
    direct: boolean | Buffer[],
  ) {
    this.unsynced = true;
    try {
      const wentDirect =
        direct !== false &&
        (await (direct === true
          ? this.direct.write(parts, position, length)
          : this.direct.writeStaged(direct, position, length)));
      if (!wentDirect) {
        const write = () => this.writeOnThreadpool(parts, position, length, limit);
        await (this.lanes ? this.lanes.run(write) : write());
      }
      this.wrote(position, length);
    } catch (err) {
      this.writeFailed();
      throw err;
    } finally {
      // A sync that began while this write ran did not cover it: the next one must not be skipped.
      this.unsynced = true;
    }
  }

  private async writeOnThreadpool(parts: Buffer[], position: number, length: number, limit: number) {
    let done = await writevAt(this.fd, limit < length ? truncate(parts, limit) : parts, position);
    const all = done < length ? Buffer.concat(parts) : null;
    while (all !== null && done < length) {
      const piece = all.subarray(done, done + Math.min(length - done, limit));
      done += madeProgress(await writevAt(this.fd, [piece], position + done), done, length);
    }
  }

  private wrote(position: number, length: number): void {
    if (position + length > this.fileBytes) this.fileBytes = position + length;
  }

  /** A failed write may still have made the file longer. */
  private writeFailed(): void {
    this.fileBytes = Math.max(this.fileBytes, fileLength(this.fd));
  }

  /** Whether a write was done since the last sync began (what `syncDataAsync` looks at). */
  get unsyncedWrites(): boolean {
    return this.unsynced;
  }

  /** Whether a write since the last completed sync may not be durable (what `syncData` looks at). */
  get needsSync(): boolean {
    return this.unsynced || this.asyncSyncs > 0;
  }

  syncData(): void {
    if (!this.needsSync) return;
    this.unsynced = false;
    try {
      fs.fdatasyncSync(this.fd);
    } catch (err) {
      this.unsynced = true;
      throw err;
    }
  }

  /** `syncData` off the event loop. */
  async syncDataAsync(): Promise<void> {
    if (!this.unsynced) return;
    // Cleared before the call: writes that land while it runs set it again.
    this.unsynced = false;
    this.asyncSyncs++;
    try {
      await new Promise<void>((resolve, reject) =>
        fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      this.unsynced = true;
      throw err;
    } finally {
      this.asyncSyncs--;
    }
  }

  close(): void {
    this.direct.close();
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    for (const fd of this.backingClaims.splice(0)) fs.closeSync(fd);
  }
}

/** A read that met the end of the file: the file was cut short (the caller names it IO_ERROR). */
function pastEnd(path: string, position: number): NodeJS.ErrnoException {
  return Object.assign(
    new Error(`data file ${path} ends before byte ${position}, which holds data: it was cut short`),
    {
      code: 'EIO',
      path,
    },
  );
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

/** Bytes a system call of a short-write loop moved; none is EIO (a write that stops making progress). */
function madeProgress(n: number, done: number, length: number): number {
  if (n <= 0) throw Object.assign(new Error(`short write: ${done} of ${length} bytes`), { code: 'EIO' });
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

function fileLength(fd: number): number {
  try {
    return fs.fstatSync(fd).size;
  } catch {
    return 0;
  }
}
