/**
 * Byte-level I/O on one mapping table (the layer above tables and the space map).
 *
 * Contract:
 * - read: any offset/length; unmapped blocks and explicit zeros read as zeros;
 *   physically contiguous blocks are read with one pread.
 * - write: a block the table does not own is never written in place: it gets a
 *   new physical block (copy-on-write). Where the chain below has data there,
 *   the new block holds only the sub-blocks the write touches (sub-block.ts;
 *   the entry's mask says which, the rest still read through to the chain;
 *   a write not aligned to sub-blocks has their old content copied up around
 *   it); elsewhere it is filled with zeros around a partial write. Owned
 *   blocks are overwritten in place (a partly owned one gains the sub-blocks
 *   written). Data goes to the device before any map entry points at it.
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
import { entryMask, entryPhysical, fullMask, maskSpans, touchedMask } from './sub-block';
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

/** Physical block of the entry `table` reads `block` through (0: zeros; it may own only some sub-blocks of it). */
export function resolve(ctx: IoContext, table: TableState, block: number): number {
  const owner = ctx.tables.ownerOf(table, block);
  return owner === 0 ? ZERO_BLOCK : dataBlock(ctx, owner, block);
}

/** The physical block `table` reads all of `block` from (0: zeros), or -1 when it reads parts from several. */
function resolveWhole(ctx: IoContext, table: TableState, block: number): number {
  const owner = ctx.tables.ownerOf(table, block);
  if (owner === 0) return ZERO_BLOCK;
  const entry = dataEntry(ctx, owner, block);
  return entryMask(entry) !== 0 ? -1 : entry;
}

/**
 * Calls `emit` with where bytes [from, to) of `block` read from through the
 * chain from `table` (null: below the root, zeros), in order: physical block
 * (0: zeros) and the byte range within it. An entry that owns only some
 * sub-blocks gives those, and the chain below its table the rest.
 */
function readPieces(
  ctx: IoContext,
  table: TableState | null,
  block: number,
  from: number,
  to: number,
  emit: (physical: number, start: number, end: number) => void,
): void {
  const owner = table === null ? 0 : ctx.tables.ownerOf(table, block);
  const entry = owner === 0 ? ZERO_BLOCK : dataEntry(ctx, owner, block);
  const physical = entryPhysical(entry);
  const mask = entryMask(entry);
  if (mask === 0) {
    emit(physical, from, to);
    return;
  }
  const below = ctx.tables.get(owner).parent;
  for (const [start, end, own] of maskSpans(ctx.blockSize, mask)) {
    const a = Math.max(start, from);
    const b = Math.min(end, to);
    if (a >= b) continue;
    if (own) emit(physical, a, b);
    else readPieces(ctx, below, block, a, b, emit);
  }
}

/**
 * `tables.physical` of an entry whose block is read or written: one the pool
 * never handed out (a damaged map record) throws CORRUPT, so it is never read
 * as zeros, copied up, written into or freed.
 */
function dataBlock(ctx: IoContext, tableId: number, block: number): number {
  return entryPhysical(dataEntry(ctx, tableId, block));
}

/** `dataBlock`, with the entry's sub-block mask: physical + mask × 2^32 (sub-block.ts). */
function dataEntry(ctx: IoContext, tableId: number, block: number): number {
  const entry = ctx.tables.entry(ctx.batch, tableId, block);
  const physical = entryPhysical(entry);
  const hwm = ctx.space.hwm;
  if (!(physical >= 0 && physical < hwm)) throw ctx.damaged.refuse(tableId, block, physical, hwm);
  return entry;
}

/** Where a table reads a run of its blocks from, for a reader outside the event loop (mapping-events.ts). */
export interface BlockLocation {
  /** The table resolved through: `remapped` events of it concern these blocks. */
  table: number;
  /** Physical block of each block asked for (0: reads as zeros; IN_PIECES: read on the event loop). */
  blocks: number[];
}

/** A block read from several blocks (sub-block.ts): it has no one address an outside reader could read. */
export const IN_PIECES = 2 ** 32;

/**
 * Where `table` reads blocks [first, first + count) from now: fewer than
 * asked when one is damaged, so the outside reader asks for it, and the
 * read on the event loop fails with CORRUPT.
 */
export function locateBlocks(ctx: IoContext, table: TableState, first: number, count: number): BlockLocation {
  const blocks: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const physical = resolveWhole(ctx, table, first + i);
      blocks.push(physical < 0 ? IN_PIECES : physical);
    }
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
  const piece = (physical: number, start: number, length: number, at: number) => {
    if (physical === ZERO_BLOCK) {
      run = null;
      target.fill(0, at, at + length);
    } else if (
      run !== null &&
      (run.block - 1) * bs + run.offset + run.length === (physical - 1) * bs + start
    ) {
      run.length += length;
    } else {
      run = { block: physical, offset: start, length, at };
      runs.push(run);
    }
  };
  const end = offset + length;
  for (let pos = offset; pos < end; ) {
    const block = Math.floor(pos / bs);
    const inBlock = pos - block * bs;
    const take = Math.min(bs - inBlock, end - pos);
    const at = pos - offset;
    const owner = ctx.tables.ownerOf(table, block);
    const entry = owner === 0 ? ZERO_BLOCK : dataEntry(ctx, owner, block);
    if (entryMask(entry) !== 0) {
      readPieces(ctx, table, block, inBlock, inBlock + take, (p, a, b) =>
        piece(p, a, b - a, at + a - inBlock),
      );
    } else piece(entry, inBlock, take, at);
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
  /** Where in the block the device write starts, and its bytes (the caller's data, or a filled buffer). */
  inBlock: number;
  bytes: Buffer;
  /** Owned physical block to overwrite in place, or 0 if the block needs a new one. */
  physical: number;
  /** The entry's sub-block mask once written (sub-block.ts; 0: it owns all of the block). */
  mask: number;
  /** Whether the entry must be staged: a new block, or an owned one whose mask changed. */
  stage: boolean;
}

/** Only a container's current table takes writes; a snapshot's never changes. */
function assertWritable(table: TableState): void {
  if (table.frozen || table.owner.kind !== 'container') throw FROZEN_TABLE(table.id);
}

/**
 * What the table reads now around a write, to read into `into` before
 * `bytes` go over it at `at` (copy-up): the device reads (into `into`; its
 * zero parts are already filled), then the copy.
 */
export interface CopyUp {
  reads: ReadRun[];
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
  const copyUps: CopyUp[] = [];
  const giveBack = () => giveBlockBuffers(copyUps.map((c) => c.into));
  // Reads through the table around the write into a block-sized buffer: [from, to) of the block.
  const copyUp = (block: number, from: number, to: number, bytes: Buffer, at: number): Buffer => {
    const into = takeBlockBuffer(bs);
    const view = into.subarray(0, to - from);
    copyUps.push({ reads: [], into, bytes, at: at - from });
    copyUps[copyUps.length - 1]!.reads = planRead(ctx, table, block * bs + from, to - from, view);
    return view;
  };
  let fresh = 0;
  try {
    for (let pos = offset; pos < offset + data.length; ) {
      const block = Math.floor(pos / bs);
      const inBlock = pos - block * bs;
      const length = Math.min(bs - inBlock, offset + data.length - pos);
      const bytes = data.subarray(pos - offset, pos - offset + length);
      pos += length;
      const entry = table.presence.has(block) ? dataEntry(ctx, table.id, block) : ZERO_BLOCK;
      const owned = entryPhysical(entry);
      if (owned !== ZERO_BLOCK) {
        const mask = entryMask(entry);
        if (mask === 0 || length === bs) {
          segments.push({ block, inBlock, bytes, physical: owned, mask: 0, stage: mask !== 0 });
          continue;
        }
        // Partly owned: the sub-blocks the write touches become its own. One it covers only in part
        // and does not own yet is filled first with what the table reads there (copy-up).
        const touched = touchedMask(bs, inBlock, length);
        const gained = mask | touched;
        const [from, to] = touchedRange(bs, inBlock, length);
        const fill = (from !== inBlock || to !== inBlock + length) && (mask & touched) !== touched;
        segments.push({
          block,
          inBlock: fill ? from : inBlock,
          bytes: fill ? copyUp(block, from, to, bytes, inBlock) : bytes,
          physical: owned,
          mask: gained === fullMask(bs) ? 0 : gained,
          stage: gained !== mask,
        });
        continue;
      }
      fresh++;
      if (length === bs) {
        segments.push({ block, inBlock, bytes, physical: ZERO_BLOCK, mask: 0, stage: true });
        continue;
      }
      // Where the chain below has data, the new block holds only the sub-blocks written (no copy-up
      // of the rest); elsewhere (zeros below, or the table's own explicit zeros) it is zeros around them.
      const below = table.presence.has(block) ? ZERO_BLOCK : resolve(ctx, table, block);
      const touched = below === ZERO_BLOCK ? fullMask(bs) : touchedMask(bs, inBlock, length);
      const [from, to] = touched === fullMask(bs) ? [0, bs] : touchedRange(bs, inBlock, length);
      let filled: Buffer = bytes;
      if (from !== inBlock || to !== inBlock + length) {
        if (below === ZERO_BLOCK) {
          const into = takeBlockBuffer(bs).fill(0);
          copyUps.push({ reads: [], into, bytes, at: inBlock });
          filled = into;
        } else filled = copyUp(block, from, to, bytes, inBlock);
      }
      segments.push({
        block,
        inBlock: from,
        bytes: filled,
        physical: ZERO_BLOCK,
        mask: touched === fullMask(bs) ? 0 : touched,
        stage: true,
      });
    }
  } catch (err) {
    // A damaged entry throws here, before blocks are taken: only the buffers to give back.
    giveBack();
    throw err;
  }
  const runs = fresh > 0 ? ctx.space.allocate(fresh) : [];
  const newBlocks = expandRuns(runs);
  if (runs.length > 0) ctx.io.unwritten.add(runs);
  const writes: WriteRun[] = [];
  let next = 0;
  let pending: (WriteRun & { bytes: number }) | null = null;
  for (const seg of segments) {
    if (seg.physical === ZERO_BLOCK) seg.physical = newBlocks[next++]!;
    const { physical, inBlock, bytes } = seg;
    const p = pending as (WriteRun & { bytes: number }) | null;
    if (p && (p.physical - 1) * bs + p.inBlock + p.bytes === (physical - 1) * bs + inBlock) {
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
    if (buffersKept) giveBack();
    buffersKept = false;
  };
  return {
    copyUps,
    writes,
    finish: () => {
      giveBuffersBack();
      ctx.io.unwritten.delete(runs);
      for (const seg of segments)
        if (seg.stage) ctx.tables.map(ctx.batch, table, seg.block, seg.physical, seg.mask);
      ctx.batch.allocated.push(...runs);
    },
    abandon: () => {
      giveBuffersBack();
      ctx.io.unwritten.delete(runs);
      ctx.space.giveBack(runs);
    },
  };
}

/** The byte range [from, to) of the whole sub-blocks [inBlock, inBlock + length) touches. */
function touchedRange(blockSize: number, inBlock: number, length: number): [number, number] {
  const mask = touchedMask(blockSize, inBlock, length);
  const spans = maskSpans(blockSize, mask).filter(([, , own]) => own);
  return [spans[0]![0], spans[spans.length - 1]![1]];
}

export function writeRange(ctx: IoContext, table: TableState, offset: number, data: Buffer): void {
  const plan = planWrite(ctx, table, offset, data);
  try {
    for (const c of plan.copyUps) {
      for (const r of c.reads) ctx.device.read(r.block, r.offset, r.length, c.into, r.at);
      c.bytes.copy(c.into, c.at);
    }
    for (const w of plan.writes) ctx.device.write(w.physical, w.inBlock, w.parts);
  } catch (err) {
    plan.abandon();
    throw err;
  }
  plan.finish();
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
