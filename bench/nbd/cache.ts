/**
 * Page cache state before a measured run, the same for both servers' files:
 * cold — `sync`, then POSIX_FADV_DONTNEED on every file (python3's
 * os.posix_fadvise); warm — the same drop, then every data extent read once
 * (SEEK_DATA/SEEK_HOLE, so a sparse pool file costs what it holds) in 64 KiB
 * reads with readahead off (POSIX_FADV_RANDOM), as the servers read. A
 * sequential read in large chunks would leave the files in 2 MiB page-cache
 * folios, and a 4 KiB write into a cached 2 MiB folio costs ext4 tens of µs
 * (it walks the folio's buffer heads): a state no server makes, which would
 * fall on the side whose writes land in blocks the warm step read (the pool's
 * freed blocks, not a fresh qcow2 overlay). What each server keeps in its own
 * memory (qemu-nbd's L2 cache, the agent's in-memory tables) stays as it is.
 * `resident` says what fincore(1) then finds in the cache, so a reader can
 * check that cold was cold. Cost: one short python3 and one fincore process.
 */
import { exec } from './procs';

const PAGE_CACHE_TOOL = `
import os, sys
mode = sys.argv[1]
for path in sys.argv[2:]:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if mode == 'drop':
            continue
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        end = os.fstat(fd).st_size
        offset = 0
        while offset < end:
            try:
                offset = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, offset, os.SEEK_HOLE)
            while offset < hole:
                chunk = os.pread(fd, min(1 << 16, hole - offset), offset)
                if not chunk:
                    break
                offset += len(chunk)
    finally:
        os.close(fd)
`;

export type CacheMode = 'warm' | 'cold';

/** Bytes of `files` in the page cache, and their apparent size. */
export async function resident(files: string[]): Promise<{ bytes: number; size: number }> {
  const out = await exec('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'RES,SIZE', ...files]);
  let bytes = 0;
  let size = 0;
  for (const line of out.trim().split('\n')) {
    const [res, total] = line.trim().split(/\s+/).map(Number);
    bytes += res ?? 0;
    size += total ?? 0;
  }
  return { bytes, size };
}

/** Puts `files` in `mode`; returns what is resident afterwards. */
export async function prepareCache(mode: CacheMode, files: string[]) {
  if (mode === 'cold') await exec('sync', []);
  await exec('python3', ['-c', PAGE_CACHE_TOOL, mode === 'cold' ? 'drop' : 'read', ...files]);
  return resident(files);
}
