/**
 * Reads, writes and trims of the NBD data path, with the device I/O on
 * libuv's threadpool so that N requests in flight are N disk I/Os in flight.
 *
 * Contract (the same as block-io.ts, plus concurrency):
 * - the metadata work (resolving blocks, allocating, staging map entries) is
 *   synchronous and in memory; only the bytes move off the event loop;
 * - a write's map entries are staged only once all its device writes
 *   completed, so a commit (flush) never makes durable an entry that points
 *   at data not yet written; a failed write gives its new blocks back;
 * - each request holds its block range (io-tracker.ts): overlapping writes and
 *   trims of one container run in arrival order, a trim waits for the reads
 *   it could free blocks under;
 * - `table()` is asked after the range is held: it is the container's current
 *   table then (a snapshot that ran while the request waited froze the old
 *   one), or throws if the caller's binding no longer holds.
 * Cost: one threadpool round trip per physically contiguous run (reads) or
 * per copy-up read and run (writes; a write of WRITE_NOW_MAX or less goes
 * out on the event loop after its copy-up reads while writes are fast);
 * O(blocks) memory work as block-io.ts. Small reads and writes run on the
 * event loop while the page cache answers (`readRangeNow`, `writeRangeNow`):
 * no threadpool round trip at all.
 */
import { type IoContext, planRead, planWrite, zeroRange } from './block-io';
import type { RangeUse } from './io-tracker';
import type { TableState } from './table-state';

/**
 * The largest read done on the event loop from the page cache. A threadpool
 * read costs two hand-offs (context switches: on the 2-core test host the
 * agent used 0.19 s of CPU per nbdcopy of 256 MiB with its 256 KiB reads on
 * the threadpool, 0.15 s with them on the event loop, as qemu-nbd); a larger
 * read's copy (about 10 µs per 100 KiB) would hold the loop, and every other
 * client with it, longer than a hand-off costs, so it is copied on another core.
 * Without RWF_NOWAIT a read on the loop may wait for the disk: then only below 128 KiB.
 */
export function loopReadMax(device: { readsNeverWait: boolean }): number {
  return device.readsNeverWait ? 256 * 1024 : 128 * 1024 - 1;
}

/**
 * The same read done now, on the event loop, while reads are page-cache hits
 * (`BlockDevice.readsHit`), it is no larger than `loopReadMax` and the
 * page cache holds all of it (`BlockDevice.readNow`); false otherwise (then
 * `target` may hold part of the bytes: the caller reads it all again). A
 * synchronous read holds no range: nothing can run while it does.
 */
export function readRangeNow(ctx: IoContext, table: TableState, offset: number, target: Buffer): boolean {
  if (!ctx.device.readsHit || target.length > loopReadMax(ctx.device)) return false;
  for (const r of planRead(ctx, table, offset, target.length, target))
    if (!ctx.device.readNow(r.block, r.offset, r.length, target, r.at)) return false;
  return true;
}

export function readRangeAsync(
  ctx: IoContext,
  container: number,
  table: () => TableState,
  offset: number,
  target: Buffer,
): Promise<void> {
  return holding(ctx, container, offset, target.length, 'read', async () => {
    const runs = planRead(ctx, table(), offset, target.length, target);
    const offload = target.length > loopReadMax(ctx.device);
    if (runs.length === 1) {
      const r = runs[0]!;
      await ctx.device.readAsync(r.block, r.offset, r.length, target, r.at, offload);
    } else if (runs.length > 1) {
      await settleAll(
        runs.map((r) => ctx.device.readAsync(r.block, r.offset, r.length, target, r.at, offload)),
      );
    }
  });
}

/**
 * Writes up to this many bytes may run on the event loop: a buffered write
 * (and a block's copy-up) of this size costs less there than the two
 * threadpool hand-offs, which on a small host are context switches.
 */
export const WRITE_NOW_MAX = 64 * 1024;

/**
 * The same write done now, on the event loop (copy-up reads, device writes,
 * then the map entries: the order writeRangeAsync keeps), when it is small,
 * writes do not stall (`BlockDevice.writesFast`), the blocks it copies up
 * are in the page cache, and nothing it must wait for holds its blocks
 * (`IoTracker.mayRunNow`); false (nothing done) otherwise. It holds no
 * range: nothing runs meanwhile.
 */
export function writeRangeNow(
  ctx: IoContext,
  container: number,
  table: TableState,
  offset: number,
  data: Buffer,
): boolean {
  const bs = ctx.blockSize;
  if (!writesNow(ctx, data)) return false;
  const first = Math.floor(offset / bs);
  const last = Math.floor((offset + data.length - 1) / bs);
  if (!ctx.io.mayRunNow(container, first, last, 'write')) return false;
  const plan = planWrite(ctx, table, offset, data);
  // A copy-up read that may wait for the disk is left to the threadpool (its blocks go back unused).
  // With RWF_NOWAIT one never waits: it is tried whatever the last reads did (copyUpsTryCache).
  if (!copyUpsTryCache(ctx) && plan.copyUps.some((c) => c.reads.length > 0)) {
    plan.abandon();
    return false;
  }
  try {
    for (const c of plan.copyUps) {
      for (const r of c.reads) {
        // What to copy up is not all in the page cache: the threadpool reads it (nothing written yet).
        if (!ctx.device.readNow(r.block, r.offset, r.length, c.into, r.at)) {
          plan.abandon();
          return false;
        }
      }
      c.bytes.copy(c.into, c.at);
    }
    for (const w of plan.writes) ctx.device.writeWatched(w.physical, w.inBlock, w.parts);
  } catch (err) {
    plan.abandon();
    throw err;
  }
  plan.finish();
  return true;
}

/**
 * Whether a write's copy-up reads are tried in the page cache on the event
 * loop now. Reads back off to the threadpool for a while after a miss
 * (BlockDevice.readsHit), but a copy-up read sent there costs its write two
 * hand-offs instead of none, while a try that misses costs one RWF_NOWAIT
 * system call: in 4 clients' random 4 KiB writes into fresh clones of one
 * cold 1 GiB disk, most source blocks are cached once a few seconds of
 * copy-ups read them, yet one miss in ten sent nearly every copy-up read to
 * the threadpool. Without RWF_NOWAIT a try may wait for the disk: then only while reads hit.
 */
function copyUpsTryCache(ctx: IoContext): boolean {
  return ctx.device.readsNeverWait || ctx.device.readsHit;
}

export function writeRangeAsync(
  ctx: IoContext,
  container: number,
  table: () => TableState,
  offset: number,
  data: Buffer,
): Promise<void> {
  return holding(ctx, container, offset, data.length, 'write', async () => {
    const plan = planWrite(ctx, table(), offset, data);
    try {
      if (plan.copyUps.length > 0) {
        await settleAll(
          plan.copyUps.map(async (c) => {
            await settleAll(
              c.reads.map((r) => ctx.device.readAsync(r.block, r.offset, r.length, c.into, r.at)),
            );
            c.bytes.copy(c.into, c.at);
          }),
        );
      }
      if (writesNow(ctx, data)) {
        for (const w of plan.writes) ctx.device.writeWatched(w.physical, w.inBlock, w.parts);
      } else {
        await settleAll(plan.writes.map((w) => ctx.device.writeAsync(w.physical, w.inBlock, w.parts)));
      }
    } catch (err) {
      plan.abandon();
      throw err;
    }
    plan.finish();
  });
}

/**
 * Whether a write of `data` may go to the device on the event loop: no more
 * than WRITE_NOW_MAX bytes while writes do not stall. The one rule for
 * `writeRangeNow` and for a write whose copy-up read went to the threadpool:
 * that write then costs one hand-off, not two, and does not wait on the data
 * file's inode lock behind threadpool writers. On the 2-core test host, 4 fio
 * clients writing 4 KiB at random (QD32) into fresh clones, cold: 5.3-6.6k
 * IOPS with these writes on the threadpool, 14.0-16.5k on the event loop.
 */
function writesNow(ctx: IoContext, data: Buffer): boolean {
  return data.length <= WRITE_NOW_MAX && ctx.device.writesFast;
}

/** zeroRange (block-io.ts) holding the range: it waits for the reads and writes it could free blocks under. */
export function zeroRangeHeld(
  ctx: IoContext,
  container: number,
  table: () => TableState,
  offset: number,
  length: number,
): Promise<void> {
  return holding(ctx, container, offset, length, 'trim', async () => zeroRange(ctx, table(), offset, length));
}

/**
 * Waits for every device I/O of a request, then throws the first failure.
 * Not Promise.all: it rejects at the first failure while the others still
 * run on the threadpool, and the caller would then give back the blocks they
 * are writing (a later write could get one and be overwritten) and the
 * buffer they read into (recycled into another client's reply).
 */
async function settleAll(ios: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(ios);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Runs `work` holding the blocks of [offset, offset + length) of `container` (io-tracker.ts). */
async function holding(
  ctx: IoContext,
  container: number,
  offset: number,
  length: number,
  use: RangeUse,
  work: () => Promise<void>,
): Promise<void> {
  const bs = ctx.blockSize;
  const release = await ctx.io.begin(
    container,
    Math.floor(offset / bs),
    Math.floor((offset + length - 1) / bs),
    use,
  );
  try {
    await work();
  } finally {
    release();
  }
}
