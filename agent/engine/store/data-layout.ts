/**
 * Where a physical block's bytes are: in the pool's one data file (or raw
 * device), or striped block by block over several data files.
 *
 * Why several: Linux holds a regular file's inode lock for the whole of a
 * buffered write(2) (ext4, xfs and btrfs alike), so the writers of one data
 * file (every vdisk of a pool) copy into the page cache one at a time. On
 * the 2-core test host, 4 fio writers of random 64 KiB blocks from a cold
 * cache wrote 7.9-11.7k blocks/s into one file and 13.0-26.2k into four.
 * Blocks are handed out one after another (space-map.ts), so striping by
 * single blocks sends concurrent copy-ups and writes, of one vdisk or of
 * several, to different files; and a run of n·k blocks is k contiguous
 * blocks in each of the n files: one system call per file.
 *
 * Contract: physical block p (≥ 1) lives in file (p − 1) mod n at byte
 * ⌊(p − 1) / n⌋ × blockSize; with one file, at (p − 1) × blockSize, the
 * layout of every pool before format 3. File 0 is the record's `dataPath`,
 * file i > 0 is `<dataPath>.<i>` (dataFilePaths).
 * Cost: pure arithmetic; `segments` is O(blocks spanned).
 */

/** Most data files a pool may stripe over. */
export const MAX_DATA_FILES = 64;

/** A byte range of one request in one data file: `length` bytes at `position`, being bytes [at, at + length) of the request. */
export interface Segment {
  file: number;
  position: number;
  at: number;
  length: number;
}

/** One data file's share of a request: its segments, back to back in the file from `position`. */
export interface FileShare {
  file: number;
  position: number;
  length: number;
  segments: Segment[];
}

export class DataLayout {
  constructor(
    readonly files: number,
    readonly blockSize: number,
  ) {
    if (!Number.isInteger(files) || files < 1 || files > MAX_DATA_FILES)
      throw new RangeError(`data files must be an integer from 1 to ${MAX_DATA_FILES}, not ${files}`);
  }

  /** The file and byte position of `offset` bytes into physical block `block`. */
  locate(block: number, offset = 0): { file: number; position: number } {
    const i = block - 1;
    if (this.files === 1) return { file: 0, position: i * this.blockSize + offset };
    return { file: i % this.files, position: Math.floor(i / this.files) * this.blockSize + offset };
  }

  /**
   * The `length` bytes starting `offset` bytes into physical block `block`
   * (running on into the following blocks), as ranges of the data files in
   * request order; ranges contiguous in both the request and one file are one.
   */
  segments(block: number, offset: number, length: number): Segment[] {
    const bs = this.blockSize;
    if (this.files === 1) return [{ file: 0, position: (block - 1) * bs + offset, at: 0, length }];
    const out: Segment[] = [];
    let b = block + Math.floor(offset / bs);
    let inBlock = offset % bs;
    for (let at = 0; at < length; b++, inBlock = 0) {
      const take = Math.min(bs - inBlock, length - at);
      const { file, position } = this.locate(b, inBlock);
      out.push({ file, position, at, length: take });
      at += take;
    }
    return out;
  }

  /** `segments` grouped by file: each file's segments are back to back in it (block b and b + n are neighbours there). */
  shares(block: number, offset: number, length: number): FileShare[] {
    if (this.files === 1) {
      const only = this.segments(block, offset, length)[0]!;
      return [{ file: 0, position: only.position, length, segments: [only] }];
    }
    const byFile = new Map<number, FileShare>();
    for (const s of this.segments(block, offset, length)) {
      const share = byFile.get(s.file);
      if (share === undefined)
        byFile.set(s.file, { file: s.file, position: s.position, length: s.length, segments: [s] });
      else {
        share.length += s.length;
        share.segments.push(s);
      }
    }
    return [...byFile.values()];
  }
}

/** The data files of a pool whose first file is `first`: `first`, `first.1`, … */
export function dataFilePaths(first: string, files: number): string[] {
  return Array.from({ length: files }, (_, i) => (i === 0 ? first : `${first}.${i}`));
}

/** Bytes [from, from + length) of `parts` laid end to end, as views (no copy). */
export function sliceParts(parts: Buffer[], from: number, length: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = from;
  for (const part of parts) {
    if (length <= 0) break;
    if (skip >= part.length) {
      skip -= part.length;
      continue;
    }
    const view = part.subarray(skip, Math.min(part.length, skip + length));
    out.push(view);
    length -= view.length;
    skip = 0;
  }
  return out;
}
