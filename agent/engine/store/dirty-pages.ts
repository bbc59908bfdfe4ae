/**
 * Whether the host's dirty page cache is far from the point where the kernel
 * makes writers wait. A buffered write on the event loop (BlockDevice's
 * `writeWatched`) is only safe while `write(2)` cannot sleep in
 * balance_dirty_pages: past the "freerun" level (halfway between the
 * background and the foreground dirty limits) the kernel throttles writers,
 * and with a stuck disk it would hold the agent's only thread, its WebSocket
 * API and /healthz included, indefinitely.
 *
 * The global limits are the kernel's own, as it uses them now
 * (`nr_dirty_threshold`, `nr_dirty_background_threshold` in /proc/vmstat),
 * so the margin below freerun only covers what a fast writer dirties
 * between two samples (SAMPLE_MARGIN). A cgroup v2 memory limit on the
 * agent's cgroup gives the kernel a second, smaller domain whose limits it
 * does not publish: there the estimate from the limit and vm.dirty_* keeps a
 * margin of half, as the global estimate used to (the limits were guessed
 * from MemAvailable, which left the event loop writing only up to half of
 * the level where the kernel throttles, and 4 disks' cold writes went
 * through the threadpool for most of a run).
 *
 * Sampled at most every SAMPLE_MS (a few small reads, about 50 µs), not
 * per write. Where /proc cannot be read the answer is "not low": writes then go
 * to the threadpool, as before. The 1 ms stall check in BlockDevice stays as
 * the second guard.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { libcFunction } from '../../native/libc';

const SAMPLE_MS = 100;
/** Bytes a writer may dirty between two samples: at most the freerun level's eighth, at least this. */
const SAMPLE_MARGIN = 256 * 1024 * 1024;

/** The fields used, in bytes (counts of pages already multiplied out). */
export interface DirtyInputs {
  /** nr_dirty + nr_writeback: the host's dirty and under-writeback page cache. */
  dirty: number;
  writeback: number;
  /** nr_dirty_threshold / nr_dirty_background_threshold: the kernel's global limits now. */
  threshold: number;
  backgroundThreshold: number;
  /** The least memory.max of the agent's cgroup v2 and its ancestors (bytes), or null: none (cgroup v1: no per-cgroup throttling). */
  cgroupLimit: number | null;
  /** That cgroup's file_dirty + file_writeback (memory.stat); 0 without a limit. */
  cgroupDirty: number;
  /** vm.dirty_ratio / dirty_background_ratio (percent), or the _bytes forms when set (non-zero): the cgroup's limits (0 without a cgroup limit). */
  ratio: number;
  backgroundRatio: number;
  bytes: number;
  backgroundBytes: number;
}

/** Bytes of dirty + writeback pages still allowed before a writer could be throttled (negative: past that). */
export function dirtyHeadroom(i: DirtyInputs): number {
  const freerun = (i.threshold + i.backgroundThreshold) / 2;
  const global = freerun - Math.max(freerun / 8, SAMPLE_MARGIN) - (i.dirty + i.writeback);
  if (i.cgroupLimit === null) return global;
  const limit = i.bytes > 0 ? i.bytes : (i.cgroupLimit * i.ratio) / 100;
  const background = i.backgroundBytes > 0 ? i.backgroundBytes : (i.cgroupLimit * i.backgroundRatio) / 100;
  return Math.min(global, (limit + background) / 4 - i.cgroupDirty);
}

function field(text: string, name: string, file: string): number {
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  if (!m) throw new Error(`${file} has no ${name}`);
  return Number(m[1]);
}

const vm = (name: string) => Number(fs.readFileSync(`/proc/sys/vm/${name}`, 'utf8').trim());

let ownCgroup: string | null | undefined;

/** The agent's cgroup v2 directory, or null (cgroup v1, or not Linux); looked up once. */
function cgroupDir(): string | null {
  if (ownCgroup !== undefined) return ownCgroup;
  ownCgroup = null;
  const line = fs
    .readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  if (line) ownCgroup = `/sys/fs/cgroup${line.slice(3)}`;
  return ownCgroup;
}

/**
 * The smallest memory.max of the agent's cgroup v2 and its ancestors (the
 * kernel's cgroup headroom is the least of theirs), with the dirty bytes of
 * that cgroup (memory.stat counts its descendants too), or no limit. The walk
 * stops at the first directory without memory.max (the root cgroup has none).
 */
function cgroupMemory(leaf: string | null): { limit: number | null; dirty: number } {
  let limit: number | null = null;
  let limited = '';
  for (let dir = leaf; dir !== null; dir = dir === path.dirname(dir) ? null : path.dirname(dir)) {
    let max: string;
    try {
      max = fs.readFileSync(`${dir}/memory.max`, 'utf8').trim();
    } catch {
      break;
    }
    if (max !== 'max' && (limit === null || Number(max) < limit)) {
      limit = Number(max);
      limited = dir;
    }
  }
  if (limit === null) return { limit: null, dirty: 0 };
  const stat = fs.readFileSync(`${limited}/memory.stat`, 'utf8');
  return {
    limit,
    dirty: field(stat, 'file_dirty', 'memory.stat') + field(stat, 'file_writeback', 'memory.stat'),
  };
}

/** _SC_PAGESIZE on Linux. */
const SC_PAGESIZE = 30;
let pageBytes: number | undefined;

/**
 * The page size /proc/vmstat counts in. Without koffi, 4096: where pages are
 * larger every figure is then scaled down alike and only the fixed margin
 * grows, so the answer errs towards "not low".
 */
function pageSize(): number {
  pageBytes ??= Number(libcFunction('long sysconf(int)')?.(SC_PAGESIZE) ?? 4096) || 4096;
  return pageBytes;
}

export function readDirtyInputs(cgroup: string | null = cgroupDir()): DirtyInputs {
  const vmstat = fs.readFileSync('/proc/vmstat', 'utf8');
  const page = pageSize();
  const pages = (name: string) => field(vmstat, name, '/proc/vmstat') * page;
  const memory = cgroupMemory(cgroup);
  // vm.dirty_* only size a cgroup's limits: without one they are not read.
  const limited = memory.limit !== null;
  return {
    dirty: pages('nr_dirty'),
    writeback: pages('nr_writeback'),
    threshold: pages('nr_dirty_threshold'),
    backgroundThreshold: pages('nr_dirty_background_threshold'),
    cgroupLimit: memory.limit,
    cgroupDirty: memory.dirty,
    ratio: limited ? vm('dirty_ratio') : 0,
    backgroundRatio: limited ? vm('dirty_background_ratio') : 0,
    bytes: limited ? vm('dirty_bytes') : 0,
    backgroundBytes: limited ? vm('dirty_background_bytes') : 0,
  };
}

export class DirtyPages {
  private sampledAt = -Infinity;
  private lowNow = false;

  constructor(private readonly read: () => DirtyInputs = readDirtyInputs) {}

  /** True while dirty pages are well below the level at which the kernel throttles writers. */
  get low(): boolean {
    const now = performance.now();
    if (now - this.sampledAt >= SAMPLE_MS) {
      this.sampledAt = now;
      try {
        this.lowNow = dirtyHeadroom(this.read()) > 0;
      } catch {
        this.lowNow = false;
      }
    }
    return this.lowNow;
  }
}
