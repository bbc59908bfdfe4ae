/**
 * Reads that do not wait for the disk: preadv2(2) with RWF_NOWAIT copies what
 * the page cache holds and returns EAGAIN instead of waiting for a disk read.
 * The event loop may read this way without the risk that one read of a slow
 * or stuck disk stops every VM's I/O and the agent's API with it. (For the
 * pages it misses the kernel still starts a readahead, which the threadpool
 * read then waits for; starting it can only wait where the device's request
 * queue is full.)
 *
 * Contract: `nowaitReader(fd)` is null where this cannot be done (no koffi,
 * not Linux, a file system or device without RWF_NOWAIT support: EOPNOTSUPP);
 * else a function that reads up to `length` bytes at `position` into
 * `target[at..]` and returns the bytes read (0 at the end of the file, fewer
 * than asked where the cache holds only a first part) or WOULD_BLOCK. Other
 * errors throw an errno-style Error (code EIO, …) like fs.readSync.
 *
 * Cost: one system call and the copy, like fs.readSync (measured on the test
 * host: 1.35 µs against 1.23 µs for 4 KiB; 19.6 µs against 19.6 µs for 256 KiB).
 */
import { bufferAddress, lastErrno, libcFunction } from '../../native/libc';

/** The cache does not hold the first byte asked: the read would wait for the disk. */
export const WOULD_BLOCK = -1;

const RWF_NOWAIT = 0x8;
const EAGAIN = 11;
const EINTR = 4;
const ERRNO_CODES: Record<number, string> = {
  5: 'EIO',
  9: 'EBADF',
  14: 'EFAULT',
  22: 'EINVAL',
  95: 'EOPNOTSUPP',
};

export type NowaitRead = (target: Buffer, at: number, length: number, position: number) => number;

type PreadV2 = (fd: number, iov: Buffer, count: number, offset: number, flags: number) => number;

/** A page-cache-only reader for `fd`, or null where the host or its file system cannot do one. */
export function nowaitReader(fd: number): NowaitRead | null {
  const preadv2 = libcFunction('intptr_t preadv2(int, void *, int, int64_t, int)') as PreadV2 | null;
  if (preadv2 === null) return null;
  // One iovec { void *base; size_t len }, filled per call: the target's address is taken at the
  // call, never kept (a buffer's memory may be freed once the read returns).
  const iov = Buffer.alloc(16);
  const read: NowaitRead = (target, at, length, position) => {
    if (length === 0) return 0;
    if (at < 0 || at + length > target.length) throw new RangeError('nowait read outside its buffer');
    iov.writeBigUInt64LE(bufferAddress(target)! + BigInt(at), 0);
    iov.writeBigUInt64LE(BigInt(length), 8);
    for (;;) {
      const n = preadv2(fd, iov, 1, position, RWF_NOWAIT);
      if (n >= 0) return n;
      const errno = lastErrno();
      if (errno === EAGAIN) return WOULD_BLOCK;
      if (errno === EINTR) continue;
      const code = ERRNO_CODES[errno] ?? `ERRNO_${errno}`;
      throw Object.assign(new Error(`preadv2: ${code}`), { code, errno: -errno, syscall: 'preadv2' });
    }
  };
  // The file system decides: one without RWF_NOWAIT support answers EOPNOTSUPP to every read.
  try {
    read(Buffer.alloc(1), 0, 1, 0);
  } catch {
    return null;
  }
  return read;
}
