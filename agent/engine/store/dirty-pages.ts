/**
 * Whether the host's dirty page cache is far from the point where the kernel
 * makes writers wait. A buffered write on the event loop (BlockDevice's
 * `writeWatched`) is only safe while `write(2)` cannot sleep in
 * balance_dirty_pages: past the "freerun" level (halfway between the
 * background and the foreground dirty limits) the kernel throttles writers,
 * and with a stuck disk it would hold the agent's only thread, its WebSocket
 * API and /healthz included, indefinitely. Below half of that level the
 * kernel never throttles, so the event loop may write.
 *
 * Sampled from /proc/meminfo and /proc/sys/vm at most every SAMPLE_MS (one
 * small read, ~20 µs), not per write. Where those files cannot be read the
 * answer is "not low": writes then go to the threadpool, as before.
 * Approximate by design (the kernel's dirtyable memory is close to
 * MemAvailable; a memory cgroup may have lower limits): the 1 ms stall check
 * in BlockDevice stays as the second guard.
 */
import * as fs from 'node:fs';

const SAMPLE_MS = 100;

/** The fields of /proc/meminfo used, in bytes. */
export interface DirtyInputs {
  dirty: number;
  writeback: number;
  available: number;
  /** vm.dirty_ratio / vm.dirty_background_ratio (percent), or the _bytes forms when set (non-zero). */
  ratio: number;
  backgroundRatio: number;
  bytes: number;
  backgroundBytes: number;
}

/** Bytes of dirty + writeback pages up to which the kernel cannot throttle a writer (with a margin of half). */
export function dirtyHeadroom(i: DirtyInputs): number {
  const limit = i.bytes > 0 ? i.bytes : (i.available * i.ratio) / 100;
  const background = i.backgroundBytes > 0 ? i.backgroundBytes : (i.available * i.backgroundRatio) / 100;
  const freerun = (limit + background) / 2;
  return freerun / 2 - (i.dirty + i.writeback);
}

function meminfoBytes(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`/proc/meminfo has no ${field}`);
  return Number(m[1]) * 1024;
}

const vm = (name: string) => Number(fs.readFileSync(`/proc/sys/vm/${name}`, 'utf8').trim());

export function readDirtyInputs(): DirtyInputs {
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8');
  return {
    dirty: meminfoBytes(meminfo, 'Dirty'),
    writeback: meminfoBytes(meminfo, 'Writeback'),
    available: meminfoBytes(meminfo, 'MemAvailable'),
    ratio: vm('dirty_ratio'),
    backgroundRatio: vm('dirty_background_ratio'),
    bytes: vm('dirty_bytes'),
    backgroundBytes: vm('dirty_background_bytes'),
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
