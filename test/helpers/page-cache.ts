/**
 * Puts a file's bytes on the disk only, for tests of what happens when a
 * read misses the page cache. POSIX_FADV_DONTNEED is only advice (after it,
 * no read missed on the CI host in 20 tries); a direct write is not: the
 * kernel drops the pages of its range once it is done. So every byte is read
 * and written back as it is, with O_DIRECT, and fincore (mincore(2)) then
 * checks that no page of the file is left in the cache.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { ALIGN, giveAligned, takeAligned } from '../../agent/engine/store/aligned-buffers';

/** Drops every page of `file` (a multiple of 4 KiB long) from the page cache; its bytes stay the same. */
export function dropFromPageCache(file: string): void {
  const aligned = takeAligned();
  assert.ok(aligned, 'an aligned buffer for direct I/O (koffi loads here)');
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_DIRECT);
  try {
    const size = fs.fstatSync(fd).size;
    assert.equal(size % ALIGN, 0, `${file}: ${size} bytes, not a multiple of ${ALIGN}`);
    for (let at = 0; at < size; at += aligned.length) {
      const n = Math.min(aligned.length, size - at);
      assert.equal(fs.readSync(fd, aligned, 0, n, at), n);
      assert.equal(fs.writeSync(fd, aligned, 0, n, at), n);
    }
  } finally {
    fs.closeSync(fd);
    giveAligned(aligned);
  }
  assert.equal(
    residentBytes(file),
    0,
    `${file}: no page of it is in the page cache after the direct rewrite`,
  );
}

/** How many bytes of `file` the page cache holds (util-linux fincore). */
export function residentBytes(file: string): number {
  return Number(
    execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }),
  );
}
