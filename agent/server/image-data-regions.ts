/**
 * Where a raw image holds data: lseek(2) with SEEK_DATA / SEEK_HOLE, so an
 * import reads only the allocated parts of a sparse image (`truncate`,
 * `qemu-img convert -O raw`) instead of reading its holes as zeros.
 *
 * Contract: `dataRegions(fd, size, kind)` yields, in order and without
 * overlap, ranges of [0, size) that cover every byte that may be non-zero;
 * what it leaves out reads as zeros. The whole image is one region where this
 * cannot be known: a block device, no koffi (not Linux, package missing), or a
 * file system without SEEK_DATA (EINVAL). Other errors throw an errno-style
 * Error (code EIO, …) like fs.readSync.
 *
 * Cost: two system calls per data region, none for the holes.
 */
import { lastErrno, libcFunction } from '../native/libc';

export interface DataRegion {
  offset: number;
  length: number;
}

type LSeek = (fd: number, offset: number, whence: number) => number;

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;
const EINVAL = 22;

/** The data regions of the first `size` bytes of `fd` (the whole of it where holes cannot be found). */
export function* dataRegions(fd: number, size: number, kind: 'file' | 'block'): Generator<DataRegion> {
  const lseek = kind === 'file' ? (libcFunction('int64_t lseek(int, int64_t, int)') as LSeek | null) : null;
  if (lseek === null) {
    if (size > 0) yield { offset: 0, length: size };
    return;
  }
  for (let position = 0; position < size; ) {
    const start = seek(lseek, fd, position, SEEK_DATA);
    // ENXIO: no data at or after `position` (the rest is a hole).
    if (start === 'unsupported') {
      yield { offset: position, length: size - position };
      return;
    }
    if (start === 'none' || start >= size) return;
    const hole = seek(lseek, fd, start, SEEK_HOLE);
    const end = typeof hole === 'number' ? Math.min(hole, size) : size;
    yield { offset: start, length: end - start };
    position = end;
  }
}

function seek(lseek: LSeek, fd: number, offset: number, whence: number): number | 'none' | 'unsupported' {
  const at = lseek(fd, offset, whence);
  if (at >= 0) return at;
  const errno = lastErrno();
  if (errno === ENXIO) return 'none';
  if (errno === EINVAL) return 'unsupported';
  const code = errno === 5 ? 'EIO' : `ERRNO_${errno}`;
  throw Object.assign(new Error(`lseek: ${code}`), { code, errno: -errno, syscall: 'lseek' });
}
