/**
 * Metadata headroom on the host filesystem: a ballast file,
 * `<pool>/metadata.reserve`, that holds space for LMDB to grow into when the
 * filesystem under the pool fills up (the data file's sparse writes, or
 * anything else on the host, can take every free block).
 *
 * Why: LMDB (lmdb-js without writemap) grows `meta/data.mdb` by pwrite past
 * its end; a commit that needs a page beyond the end fails with ENOSPC, and
 * then no snapshot, create or delete could ever commit again, so no API could
 * free space. Pages LMDB frees are reused inside the file, so a little room is
 * enough for deletes to go on (a delete frees pages and data blocks).
 *
 * How: the pool takes the reserve at create and at open (real bytes, not a
 * sparse file, and not zeros, which compressing filesystems do not store).
 * When a metadata commit fails with ENOSPC, the store calls `release()`, which
 * truncates the ballast, and retries the commit. While the reserve is not
 * whole, the data file may not grow (`allowsGrowth`): writes into blocks the
 * pool already holds (e.g. ones a delete freed) go on, new host space is
 * refused with OUT_OF_SPACE, so data writes never eat the metadata headroom.
 * The reserve is taken again, and growth allowed, once the host has room for
 * it and a margin (without the margin, each commit would release and retake
 * the same space).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const RESERVE_FILE = 'metadata.reserve';
const CHUNK = 1024 * 1024;
/** Largest default headroom: 4096 LMDB pages, room for deletes and snapshots to commit in any pool. */
const MAX_DEFAULT_BYTES = 16 * CHUNK;

/**
 * Default headroom for a pool of this capacity: metadata grows with the
 * blocks mapped, so 1/256 of the capacity, from 1 MiB to 16 MiB (16 MiB for
 * the default 1 TiB sparse file, 1 MiB for a 256 MiB test pool).
 */
export function defaultReserveBytes(capacityBytes: number): number {
  return Math.min(MAX_DEFAULT_BYTES, Math.max(CHUNK, Math.floor(capacityBytes / 256 / CHUNK) * CHUNK));
}

/** Incompressible filler, made once. */
let filler: Buffer | null = null;

export class MetadataReserve {
  private fd: number;
  private size: number;

  constructor(
    private readonly dir: string,
    readonly bytes: number,
  ) {
    this.fd = fs.openSync(path.join(dir, RESERVE_FILE), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  /** The whole reserve is held: the data file may grow. */
  get held(): boolean {
    return this.size >= this.bytes;
  }

  /** Bytes of the reserve on disk now. */
  get heldBytes(): number {
    return Math.min(this.size, this.bytes);
  }

  /**
   * Writes the missing part of the reserve; keeps whatever it managed if the
   * host fills up half way. Returns whether the whole reserve is held.
   */
  take(): boolean {
    if (this.fd < 0 || this.held) return this.held;
    filler ??= randomBytes(CHUNK);
    // No fsync: the point is the allocation, which write() makes (or refuses with ENOSPC); a crash
    // that loses part of the file only means the next open writes it again.
    try {
      while (this.size < this.bytes) {
        const n = fs.writeSync(this.fd, filler, 0, Math.min(CHUNK, this.bytes - this.size), this.size);
        this.size += n;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      this.size = fs.fstatSync(this.fd).size;
    }
    return this.held;
  }

  /** Takes the reserve again if the host has room for it and a margin (a quarter of it, at least 1 MiB). */
  retakeIfRoom(): boolean {
    if (this.held || this.fd < 0) return this.held;
    const missing = this.bytes - this.size;
    const fsInfo = fs.statfsSync(this.dir);
    if (fsInfo.bavail * fsInfo.bsize < missing + Math.max(CHUNK, this.bytes / 4)) return false;
    return this.take();
  }

  /** Gives the reserve back to the filesystem. Returns false if there was nothing to give. */
  release(): boolean {
    if (this.fd < 0 || this.size === 0) return false;
    fs.ftruncateSync(this.fd, 0);
    this.size = 0;
    return true;
  }

  /** Growth of the data file is allowed only while the whole reserve is held. */
  allowsGrowth(): boolean {
    return this.held || this.retakeIfRoom();
  }

  /** Closes the file; the reserve stays on disk for the next open. */
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
