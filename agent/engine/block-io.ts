/**
 * Byte-level I/O on one mapping table (the layer above tables and the space map).
 *
 * Contract:
 * - read: any offset/length; unmapped blocks and explicit zeros read as zeros;
 *   physically contiguous blocks are read with one pread.
 * - write: a block the table does not own is never written in place: it gets a
 *   new physical block (copy-on-write), filled with the old content around a
 *   partial write (copy-up). Owned blocks are overwritten in place. Data goes to
 *   the device before any map entry points at it.
 * - zero: whole blocks are unmapped (or marked as explicit zeros when the chain
 *   below has data); partial blocks are written with zeros.
 * Cost: O(blocks touched) in memory, one store lookup per block that has data,
 * and one device call per physically contiguous run.
 */

import { giveBlockBuffers, takeBlockBuffer } from './copy-up-buffers';
import type { DamagedPointers } from './damaged-pointer';
import { FROZEN_TABLE, type SnapsyncError } from './errors';
import type { IoTracker } from './io-tracker';
import { CHUNK_BLOCKS, CHUNK_SHIFT } from './presence';
import type { Run, SpaceMap } from './space-map';
import type { BlockDevice } from './store/block-device';
import { ZERO_BLOCK } from './store/keys';
import type { TableState } from './table-state';
import type { TableRegistry } from './tables';
import type { WriteBatch } from './write-batch';

export interface IoContext {
  readonly tables: TableRegistry;
  readonly device: BlockDevice;
  readonly space: SpaceMap;
  readonly batch: WriteBatch;
  readonly blockSize: number;
  /** Async device calls in flight and write range locks (block-io-async.ts). */
  readonly io: IoTracker;
  /** Map entries found damaged (damaged-pointer.ts): refused with CORRUPT, each reported once. */
  readonly damaged: DamagedPointers;
}

export type AllocationState = 'data' | 'zero' | 'hole';

export interface AllocationExtent {
  offset: number;
  length: number;
  state: AllocationState;
}

/** Physical block that `table` reads for `block` (0: zeros). */
export function resolve(ctx: IoContext, table: TableState, block: number): number {
  const owner = ctx.tables.ownerOf(table, block);
  return owner === 0 ? ZERO_BLOCK : dataBlock(ctx, owner, block);
}

/**
 * `tables.physical` of an entry whose block is read or written: one the pool
 * never handed out (a damaged map record) throws CORRUPT, so it is never read
 * as zeros, copied up, written into or freed.
 */
function dataBlock(ctx: IoContext, tableId: number, block: number): number {
  const physical = ctx.tables.physical(ctx.batch, tableId, block);
  const hwm = ctx.space.hwm;
  if (!(physical >= 0 && physical < hwm)) throw ctx.damaged.refuse(tableId, block, physical, hwm);
  return physical;
}

/** Where a table reads a run of its blocks from, for a reader outside the event loop (mapping-events.ts). */
export interface BlockLocation {
  /** The table resolved through: `remapped` events of it concern these blocks. */
  table: number;
  /** Physical block of each block asked for (0: reads as zeros). */
  blocks: number[];
}

/**
 * Where `table` reads blocks [first, first + count) from now: fewer than
 * asked when one is damaged, so the outside reader asks for it, and the
 * read on the event loop fails with CORRUPT.
 */
export function locateBlocks(ctx: IoContext, table: TableState, first: number, count: number): BlockLocation {
  const blocks: number[] = [];
  try {
    for (let i = 0; i < count; i++) blocks.push(resolve(ctx, table, first + i));
  } catch (err) {
    if ((err as SnapsyncError).code !== 'CORRUPT') throw err;
  }
  return { table: table.id, blocks };
}

/** One device read of a planned read: `length` bytes from `offset` into physical `block`, to `at` of the target. */
export interface ReadRun {
  block: number;
  offset: number;
  length: number;
  at: number;
}

/**
 * Resolves a read through the table: fills the zero parts of `target` and
 * returns the device reads that fill the rest (physically contiguous blocks
 * in one run). Memory only; the caller does the I/O, synchronously or not.
 */
export function planRead(
  ctx: IoContext,
  table: TableState,
  offset: number,
  length: number,
  target: Buffer,
): ReadRun[] {
  const bs = ctx.blockSize;
  const runs: ReadRun[] = [];
  let run: ReadRun | null = null;
  const end = offset + length;
  for (let pos = offset; pos < end; ) {
    const block = Math.floor(pos / bs);
    const inBlock = pos - block * bs;
    const take = Math.min(bs - inBlock, end - pos);
    const physical = resolve(ctx, table, block);
    const at = pos - offset;
    if (physical === ZERO_BLOCK) {
      run = null;
      target.fill(0, at, at + take);
    } else if (
      run !== null &&
      inBlock === 0 &&
      (run.block - 1) * bs + run.offset + run.length === (physical - 1) * bs
    ) {
      run.length += take;
    } else {
      run = { block: physical, offset: inBlock, length: take, at };
      runs.push(run);
    }
    pos += take;
  }
  return runs;
}

export function readRange(
  ctx: IoContext,
  table: TableState,
  offset: number,
  length: number,
  out?: Buffer,
): Buffer {
  const target = out ?? Buffer.allocUnsafe(length);
  for (const r of planRead(ctx, table, offset, length, target))
    ctx.device.read(r.block, r.offset, r.length, target, r.at);
  return target;
}

interface Segment {
  block: number;
  inBlock: number;
  length: number;
  dataOffset: number;
  /** Owned physical block to overwrite in place, or 0 if the block needs a new one. */
  physical: number;
  /** A new block's old content, for a partial write (0: zeros): resolved before any block is taken. */
  source: number;
}

/** Only a container's current table takes writes; a snapshot's never changes. */
function assertWritable(table: TableState): void {
  if (table.frozen || table.owner.kind !== 'container') throw FROZEN_TABLE(table.id);
}

/** A new block's old content to read (from physical `source`, 0: zeros) before `bytes` go over it at `at`. */
export interface CopyUp {
  source: number;
  into: Buffer;
  bytes: Buffer;
  at: number;
}

/** One device write of a planned write. */
export interface WriteRun {
  physical: number;
  inBlock: number;
  parts: Buffer[];
}

/**
 * A write, decided in memory: which blocks are overwritten in place, which
 * new blocks are allocated (already taken from the space map), what copy-up
 * reads must fill first, and the device writes. `finish` stages the map
 * entries and may only run once every device write completed; `abandon`
 * gives the new blocks back. Either gives the copy-up buffers back for reuse
 * (copy-up-buffers.ts), so neither may run while a device I/O uses them.
 */
export interface WritePlan {
  copyUps: CopyUp[];
  writes: WriteRun[];
  finish(): void;
  abandon(): void;
}

export function planWrite(ctx: IoContext, table: TableState, offset: number, data: Buffer): WritePlan {
  assertWritable(table);
  const bs = ctx.blockSize;
  const segments: Segment[] = [];
  let fresh = 0;
  for (let pos = offset; pos < offset + data.length; ) {
    const block = Math.floor(pos / bs);
    const inBlock = pos - block * bs;
    const length = Math.min(bs - inBlock, offset + data.length - pos);
    const owned = table.presence.has(block) ? dataBlock(ctx, table.id, block) : ZERO_BLOCK;
    // A damaged source throws here, before blocks are taken: nothing to give back.
    const source = owned === ZERO_BLOCK && length < bs ? oldPhysical(ctx, table, block) : ZERO_BLOCK;
    segments.push({ block, inBlock, length, dataOffset: pos - offset, physical: owned, source });
    if (owned === ZERO_BLOCK) fresh++;
    pos += length;
  }
  const runs = fresh > 0 ? ctx.space.allocate(fresh) : [];
  const newBlocks = expandRuns(runs);
  if (runs.length > 0) ctx.io.unwritten.add(runs);
  const copyUps: CopyUp[] = [];
  const writes: WriteRun[] = [];
  let next = 0;
  let pending: (WriteRun & { bytes: number }) | null = null;
  for (const seg of segments) {
    let physical = seg.physical;
    let bytes = data.subarray(seg.dataOffset, seg.dataOffset + seg.length);
    let inBlock = seg.inBlock;
    if (physical === ZERO_BLOCK) {
      physical = newBlocks[next++]!;
      if (seg.length < bs) {
        // Copy-up: the new block starts as what the table reads there now (a read fills all of it).
        const whole = takeBlockBuffer(bs);
        if (seg.source === ZERO_BLOCK) whole.fill(0);
        copyUps.push({ source: seg.source, into: whole, bytes, at: seg.inBlock });
        bytes = whole;
        inBlock = 0;
      }
    }
    const p = pending as (WriteRun & { bytes: number }) | null;
    if (p && inBlock === 0 && (p.physical - 1) * bs + p.inBlock + p.bytes === (physical - 1) * bs) {
      const last = p.parts[p.parts.length - 1]!;
      // Adjacent views of the caller's buffer stay one iovec.
      if (last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
        p.parts[p.parts.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + bytes.length);
      } else p.parts.push(bytes);
      p.bytes += bytes.length;
      if (p.parts.length >= 512) pending = null;
    } else {
      pending = { physical, inBlock, parts: [bytes], bytes: bytes.length };
      writes.push(pending);
    }
  }
  // Once: a buffer given back twice could be handed to two writes at once.
  let buffersKept = copyUps.length > 0;
  const giveBuffersBack = () => {
    if (buffersKept) giveBlockBuffers(copyUps.map((c) => c.into));
    buffersKept = false;
  };
  return {
    copyUps,
    writes,
    finish: () => {
      giveBuffersBack();
      ctx.io.unwritten.delete(runs);
      let n = 0;
      for (const seg of segments) {
        if (seg.physical === ZERO_BLOCK) ctx.tables.map(ctx.batch, table, seg.block, newBlocks[n++]!);
      }
      ctx.batch.allocated.push(...runs);
    },
    abandon: () => {
      giveBuffersBack();
      ctx.io.unwritten.delete(runs);
      ctx.space.giveBack(runs);
    },
  };
}

export function writeRange(ctx: IoContext, table: TableState, offset: number, data: Buffer): void {
  const plan = planWrite(ctx, table, offset, data);
  try {
    for (const c of plan.copyUps) {
      if (c.source !== ZERO_BLOCK) ctx.device.read(c.source, 0, ctx.blockSize, c.into, 0);
      c.bytes.copy(c.into, c.at);
    }
    for (const w of plan.writes) ctx.device.write(w.physical, w.inBlock, w.parts);
  } catch (err) {
    plan.abandon();
    throw err;
  }
  plan.finish();
}

/** The physical block `table` reads for one whole block (0: zeros). */
function oldPhysical(ctx: IoContext, table: TableState, block: number): number {
  return table.presence.has(block) ? dataBlock(ctx, table.id, block) : resolve(ctx, table, block);
}

export function zeroRange(ctx: IoContext, table: TableState, offset: number, length: number): void {
  assertWritable(table);
  const bs = ctx.blockSize;
  const end = offset + length;
  for (let pos = offset; pos < end; ) {
    const block = Math.floor(pos / bs);
    const inBlock = pos - block * bs;
    const take = Math.min(bs - inBlock, end - pos);
    if (take === bs) zeroBlock(ctx, table, block);
    else if (resolve(ctx, table, block) !== ZERO_BLOCK) writeRange(ctx, table, pos, Buffer.alloc(take));
    pos += take;
  }
}

/** Makes a whole block read as zeros, freeing what the table owned there. */
export function zeroBlock(ctx: IoContext, table: TableState, block: number): void {
  assertWritable(table);
  const owned = table.presence.has(block);
  if (owned) {
    const physical = dataBlock(ctx, table.id, block);
    if (physical !== ZERO_BLOCK) ctx.batch.released.push({ start: physical, count: 1 });
  }
  const below = table.parent === null ? 0 : ctx.tables.ownerOf(table.parent, block);
  if (below !== 0) {
    if (!owned || ctx.tables.physical(ctx.batch, table.id, block) !== ZERO_BLOCK) {
      ctx.tables.map(ctx.batch, table, block, ZERO_BLOCK);
    }
  } else if (owned) {
    ctx.tables.unmap(ctx.batch, table, block);
  }
}

/** Allocation of [offset, offset+length) as seen through `table`, as coalesced extents. */
export function allocation(
  ctx: IoContext,
  table: TableState,
  offset: number,
  length: number,
): AllocationExtent[] {
  const bs = ctx.blockSize;
  const extents: AllocationExtent[] = [];
  const push = (at: number, bytes: number, state: AllocationState) => {
    const last = extents[extents.length - 1];
    if (last && last.state === state) last.length += bytes;
    else extents.push({ offset: at, length: bytes, state });
  };
  const end = offset + length;
  const chunkBytes = CHUNK_BLOCKS * bs;
  for (let pos = offset; pos < end; ) {
    const block = Math.floor(pos / bs);
    // A chunk no table of the chain maps anything in is one hole: skip it whole (sparse 1 TiB disks).
    if (!chainMapsChunk(table, block >>> CHUNK_SHIFT)) {
      const chunkEnd = Math.min(end, ((block >>> CHUNK_SHIFT) + 1) * chunkBytes);
      push(pos, chunkEnd - pos, 'hole');
      pos = chunkEnd;
      continue;
    }
    const take = Math.min(bs - (pos - block * bs), end - pos);
    const owner = ctx.tables.ownerOf(table, block);
    const state: AllocationState =
      owner === 0 ? 'hole' : ctx.tables.physical(ctx.batch, owner, block) === ZERO_BLOCK ? 'zero' : 'data';
    push(pos, take, state);
    pos += take;
  }
  return extents;
}

function chainMapsChunk(table: TableState, chunk: number): boolean {
  for (let t: TableState | null = table; t !== null; t = t.parent)
    if (t.presence.chunks.has(chunk)) return true;
  return false;
}

function expandRuns(runs: Run[]): number[] {
  const blocks: number[] = [];
  for (const run of runs) for (let i = 0; i < run.count; i++) blocks.push(run.start + i);
  return blocks;
}
