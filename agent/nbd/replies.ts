/**
 * Transmission-phase replies: simple replies and structured reply chunks.
 * The 8-byte handle sits at bytes 8..16 of the request and of every reply
 * form, so it is copied straight across.
 */
import {
  CHUNK_HEADER_BYTES,
  REPLY_FLAG_DONE,
  REPLY_TYPE,
  SIMPLE_REPLY_BYTES,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
} from './constants';

/** Bytes before the data in a one-chunk structured read reply (chunk header + offset). */
export const DATA_CHUNK_PREFIX = CHUNK_HEADER_BYTES + 8;

export function simpleReply(handle: Buffer, error: number, payloadBytes = 0, buffers?: ReplyBuffers): Buffer {
  const size = SIMPLE_REPLY_BYTES + payloadBytes;
  const b = buffers ? buffers.get(size) : Buffer.allocUnsafe(size);
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  handle.copy(b, 8, 0, 8);
  return b;
}

/** Writes a chunk header into `b` at `at`. */
export function writeChunkHeader(
  b: Buffer,
  at: number,
  handle: Buffer,
  type: number,
  done: boolean,
  length: number,
): void {
  b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, at);
  b.writeUInt16BE(done ? REPLY_FLAG_DONE : 0, at + 4);
  b.writeUInt16BE(type, at + 6);
  handle.copy(b, at + 8, 0, 8);
  b.writeUInt32BE(length, at + 16);
}

/**
 * Large request and reply buffers, recycled once the socket has taken their
 * bytes: a fresh 1 MiB buffer costs ~50 µs (mmap + page faults), a fifth of
 * a sequential read's budget, and the garbage collector pays for it again.
 * Only big sizes; small ones come from Node's pool. One set serves every
 * connection (`sharedBuffers`), so what the agent keeps for reuse is bounded
 * however many VMs are attached.
 */
export class ReplyBuffers {
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;
  static readonly MIN = 64 * 1024;
  /** Sizes kept at once: more means clients changed sizes, and the old ones are dropped. */
  private static readonly SIZES = 8;

  /**
   * `keepBytes`: what is kept for reuse, in all. The default holds the
   * queues of nbdcopy's four connections (4 × 64 × 256 KiB): reusing only
   * part of a deep queue left most replies paying for a fresh buffer.
   */
  constructor(private readonly keepBytes = 64 * 1024 * 1024) {}

  get(bytes: number): Buffer {
    if (bytes < ReplyBuffers.MIN) return Buffer.allocUnsafe(bytes);
    const b = this.free.get(bytes)?.pop();
    if (b === undefined) return Buffer.allocUnsafe(bytes);
    this.freeBytes -= bytes;
    return b;
  }

  /** Call when the socket no longer needs `b`. */
  release(b: Buffer): void {
    if (b.length < ReplyBuffers.MIN || this.freeBytes + b.length > this.keepBytes) return;
    let list = this.free.get(b.length);
    if (!list) {
      if (this.free.size >= ReplyBuffers.SIZES) {
        this.free.clear();
        this.freeBytes = 0;
      }
      list = [];
      this.free.set(b.length, list);
    }
    list.push(b);
    this.freeBytes += b.length;
  }
}

/** The buffers every NBD connection of this process draws from. */
export const sharedBuffers = new ReplyBuffers();

/** An OFFSET_DATA chunk with room for `dataBytes` after the prefix (the caller fills it). */
export function dataChunk(
  handle: Buffer,
  offset: number,
  dataBytes: number,
  done: boolean,
  buffers?: ReplyBuffers,
): Buffer {
  const size = DATA_CHUNK_PREFIX + dataBytes;
  const b = buffers ? buffers.get(size) : Buffer.allocUnsafe(size);
  writeChunkHeader(b, 0, handle, REPLY_TYPE.OFFSET_DATA, done, 8 + dataBytes);
  writeU64(b, CHUNK_HEADER_BYTES, offset);
  return b;
}

export function holeChunk(handle: Buffer, offset: number, length: number, done: boolean): Buffer {
  const b = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + 12);
  writeChunkHeader(b, 0, handle, REPLY_TYPE.OFFSET_HOLE, done, 12);
  writeU64(b, CHUNK_HEADER_BYTES, offset);
  b.writeUInt32BE(length, CHUNK_HEADER_BYTES + 8);
  return b;
}

export function noneChunk(handle: Buffer): Buffer {
  const b = Buffer.allocUnsafe(CHUNK_HEADER_BYTES);
  writeChunkHeader(b, 0, handle, REPLY_TYPE.NONE, true, 0);
  return b;
}

export function errorChunk(handle: Buffer, error: number, message: string): Buffer {
  const text = Buffer.from(message, 'utf8').subarray(0, 4096);
  const b = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + 6 + text.length);
  writeChunkHeader(b, 0, handle, REPLY_TYPE.ERROR, true, 6 + text.length);
  b.writeUInt32BE(error, CHUNK_HEADER_BYTES);
  b.writeUInt16BE(text.length, CHUNK_HEADER_BYTES + 4);
  text.copy(b, CHUNK_HEADER_BYTES + 6);
  return b;
}

/** One BLOCK_STATUS chunk: context id, then (length, flags) descriptors. */
export function blockStatusChunk(
  handle: Buffer,
  contextId: number,
  descriptors: Array<{ length: number; flags: number }>,
): Buffer {
  const payload = 4 + 8 * descriptors.length;
  const b = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + payload);
  writeChunkHeader(b, 0, handle, REPLY_TYPE.BLOCK_STATUS, true, payload);
  b.writeUInt32BE(contextId, CHUNK_HEADER_BYTES);
  let at = CHUNK_HEADER_BYTES + 4;
  for (const d of descriptors) {
    b.writeUInt32BE(d.length, at);
    b.writeUInt32BE(d.flags, at + 4);
    at += 8;
  }
  return b;
}

function writeU64(b: Buffer, at: number, value: number): void {
  b.writeUInt32BE(Math.floor(value / 0x100000000), at);
  b.writeUInt32BE(value >>> 0, at + 4);
}
