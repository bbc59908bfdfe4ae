/**
 * Checks a pool's metadata file (LMDB's `data.mdb`) before LMDB opens it, so
 * damage is an error (CORRUPT, naming the problem) and not a dead process:
 * lmdb-js crashes (SIGSEGV) whenever LMDB refuses to open a file (its failed
 * open frees its environment twice), and LMDB itself would make a new, empty
 * environment over an empty file, or read a page a damaged meta points past
 * the end of the file (SIGBUS).
 *
 * What it checks, in LMDB's format (liblmdb/mdb.c: MDB_page_header, MDB_meta,
 * mdb_env_read_header, mdb_env_open2, mdb_pick_meta):
 * - the file is not empty and holds both meta pages (pages 0 and 1);
 * - each meta page is flagged P_META and carries MDB_MAGIC, data version 2,
 *   the same page size (a power of two from 256 to 65536) and no encryption;
 * - the meta LMDB uses (the higher txnid; meta 0 on a tie): its last page fits
 *   its map size, and the root of each of its two trees (free pages, main) is
 *   none, or a page after the metas, up to its last page and within the file,
 *   that is a branch or leaf page holding its own page number;
 * - then every page of every tree (metadata-tree-walk.ts): damage below the
 *   roots (a branch, leaf or overflow page further down) is CORRUPT too,
 *   naming the page, and so are keys out of order. What gets past it (wrong
 *   keys in order, or wrong values, on well-formed pages) is found by fsck, or
 *   by LMDB as MDB_CORRUPTED, which lmdb-corruption.ts makes CORRUPT.
 * Not the last page against the file's size: a healthy file may end before it
 * (pages a transaction allocated and freed again are never written).
 *
 * With an agent committing while `fsck --pool` checks, a commit can change the
 * metas or reuse pages mid-check: a failed check is only reported if the file's
 * newest transaction stayed the same throughout (else it is checked again).
 */
import * as fs from 'node:fs';
import { CORRUPT, IO_ERROR, isSnapsyncError } from '../errors';
import { METADATA_RECOVERY } from './lmdb-corruption';
import {
  NUM_METAS,
  P_BRANCH,
  P_INVALID,
  P_LEAF,
  P_META,
  PAGE_HEADER_BYTES,
  u16,
  u32,
  u64,
} from './lmdb-format';
import { type PageVisit, treesProblem } from './metadata-tree-walk';

const MDB_MAGIC = 0xbeefc0de;
const MDB_DATA_VERSION = 2;
const MDB_ENCRYPT = 0x2000;
const MIN_PAGE_SIZE = 256;
const MAX_PAGE_SIZE = 65536;

/** Byte offsets in a page: the 24-byte page header, then (meta pages) MDB_meta. */
const AT = {
  pageNumber: 0, // u64 mp_pgno
  pageFlags: 18, // u16 mp_flags
  magic: 24, // u32 mm_magic
  version: 28, // u32 mm_version (low 16 bits)
  mapSize: 40, // u64 mm_mapsize
  pageSize: 48, // u32 mm_dbs[FREE].md_pad = mm_psize
  envFlags: 52, // u16 mm_dbs[FREE].md_flags = mm_flags
  freeDepth: 54, // u16 mm_dbs[FREE].md_depth
  freeRoot: 88, // u64 mm_dbs[FREE].md_root
  mainDepth: 102, // u16 mm_dbs[MAIN].md_depth
  mainRoot: 136, // u64 mm_dbs[MAIN].md_root
  lastPage: 144, // u64 mm_last_pg
  txnid: 152, // u64 mm_txnid
} as const;
const META_BYTES = 168;
/** Checks again this many times while commits keep changing the file. */
const ATTEMPTS = 5;

interface Verdict {
  problem: string | null;
  /** The newest txnid the metas said, when they could be read: a change means a commit ran meanwhile. */
  txnid: bigint | null;
}

/**
 * Throws CORRUPT if `file` (an existing data.mdb) is not one LMDB can open
 * without crashing, IO_ERROR if it cannot be read. `visit` sees each page the
 * walk checked (again if commits meanwhile made it check again).
 */
export function checkMetadataFile(file: string, visit?: (page: PageVisit) => void): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw IO_ERROR('open metadata file', err, { path: file });
  }
  try {
    let verdict = inspect(fd, visit);
    for (let attempt = 1; verdict.problem !== null && attempt < ATTEMPTS; attempt++) {
      const again = inspect(fd, visit);
      if (again.txnid === verdict.txnid) break; // nothing committed meanwhile: the damage is real
      verdict = again;
    }
    if (verdict.problem !== null)
      throw CORRUPT(`pool metadata ${file} is damaged: ${verdict.problem}; ${METADATA_RECOVERY}`, {
        path: file,
        problem: verdict.problem,
      });
  } catch (err) {
    if (isSnapsyncError(err)) throw err;
    throw IO_ERROR('read metadata file', err, { path: file });
  } finally {
    fs.closeSync(fd);
  }
}

function inspect(fd: number, visit?: (page: PageVisit) => void): Verdict {
  const fileBytes = fs.fstatSync(fd).size;
  if (fileBytes === 0) return { problem: 'the file is empty', txnid: null };
  const meta0 = readAt(fd, 0, META_BYTES);
  const problem0 = metaProblem(meta0, 0);
  if (problem0) return { problem: problem0, txnid: null };
  const pageSize = u32(meta0, AT.pageSize);
  if (fileBytes < NUM_METAS * pageSize)
    return {
      problem: `the file (${fileBytes} bytes) is shorter than its two meta pages of ${pageSize} bytes`,
      txnid: null,
    };
  const meta1 = readAt(fd, pageSize, META_BYTES);
  const problem1 = metaProblem(meta1, 1);
  if (problem1) return { problem: problem1, txnid: null };
  if (u32(meta1, AT.pageSize) !== pageSize)
    return { problem: `meta pages 0 and 1 disagree on the page size`, txnid: null };
  const newest = u64(meta0, AT.txnid) >= u64(meta1, AT.txnid) ? meta0 : meta1;
  const txnid = u64(newest, AT.txnid);
  return { problem: newestMetaProblem(fd, newest, pageSize, fileBytes, visit), txnid };
}

/** What makes LMDB refuse a meta page (mdb_env_read_header, mdb_env_open2), or null. */
function metaProblem(meta: Buffer, page: number): string | null {
  if (meta.length < META_BYTES) return `the file ends within meta page ${page}`;
  if ((u16(meta, AT.pageFlags) & P_META) === 0) return `page ${page} is not an LMDB meta page`;
  if (u32(meta, AT.magic) !== MDB_MAGIC) return `meta page ${page} has no LMDB magic number`;
  const version = u32(meta, AT.version) & 0xffff;
  if (version !== MDB_DATA_VERSION)
    return `meta page ${page} says LMDB data version ${version}, not ${MDB_DATA_VERSION}`;
  const pageSize = u32(meta, AT.pageSize);
  if (pageSize < MIN_PAGE_SIZE || pageSize > MAX_PAGE_SIZE || (pageSize & (pageSize - 1)) !== 0)
    return `meta page ${page} says a page size of ${pageSize} bytes`;
  if ((u16(meta, AT.envFlags) & MDB_ENCRYPT) !== 0) return `meta page ${page} says the file is encrypted`;
  return null;
}

/** What in the meta LMDB uses would make it map or read outside the file, or null. */
function newestMetaProblem(
  fd: number,
  meta: Buffer,
  pageSize: number,
  fileBytes: number,
  visit?: (page: PageVisit) => void,
): string | null {
  const size = BigInt(pageSize);
  const lastPage = u64(meta, AT.lastPage);
  // LMDB maps (last page + 1) pages; it never commits a page beyond its map.
  if (lastPage < BigInt(NUM_METAS - 1) || (lastPage + 1n) * size > u64(meta, AT.mapSize))
    return `its newest meta says a last page (${lastPage}) outside its map`;
  const filePages = BigInt(Math.floor(fileBytes / pageSize));
  for (const [tree, at] of [
    ['free-page', AT.freeRoot],
    ['main', AT.mainRoot],
  ] as const) {
    const root = u64(meta, at);
    if (root === P_INVALID) continue; // an empty tree
    if (root < BigInt(NUM_METAS) || root > lastPage || root >= filePages)
      return `the ${tree} tree's root, page ${root}, is outside the file's ${filePages} pages`;
    const header = readAt(fd, Number(root * size), PAGE_HEADER_BYTES);
    if (u64(header, AT.pageNumber) !== root || (u16(header, AT.pageFlags) & (P_BRANCH | P_LEAF)) === 0)
      return `the ${tree} tree's root, page ${root}, is not a B-tree page`;
  }
  const file = {
    pageSize,
    lastPage,
    fileBytes,
    read: (position: number, length: number) => readAt(fd, position, length),
  };
  return treesProblem(
    file,
    [
      { name: 'free-page', root: u64(meta, AT.freeRoot), depth: u16(meta, AT.freeDepth), order: 'integer' },
      { name: 'main', root: u64(meta, AT.mainRoot), depth: u16(meta, AT.mainDepth) },
    ],
    visit,
  );
}

/** Up to `length` bytes at `position` (fewer at the end of the file). */
function readAt(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  const read = fs.readSync(fd, buffer, 0, length, position);
  return buffer.subarray(0, read);
}
