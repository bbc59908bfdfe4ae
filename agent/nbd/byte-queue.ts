/**
 * Bytes received and not yet parsed. The handshake waits on it (`need`), the
 * transmission loop parses from it synchronously. Views are zero-copy unless
 * the bytes straddle received chunks (reads that landed side by side in one
 * buffer are one chunk), then they are coalesced once.
 */
import { NbdError } from './errors';

export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private head = 0;
  /** Unconsumed bytes. */
  length = 0;
  private waiter: { bytes: number; resolve: () => void; reject: (err: Error) => void } | null = null;
  private failure: Error | null = null;

  push(data: Buffer): void {
    if (data.length === 0) return;
    const last = this.chunks[this.chunks.length - 1];
    // A read that landed right after the previous one in the same memory (arena reads) extends its
    // chunk: a payload that came in several reads is then one view, taken without a copy.
    if (last && last.buffer === data.buffer && last.byteOffset + last.length === data.byteOffset)
      this.chunks[this.chunks.length - 1] = Buffer.from(
        data.buffer,
        last.byteOffset,
        last.length + data.length,
      );
    else this.chunks.push(data);
    this.length += data.length;
    const w = this.waiter;
    if (w && this.length >= w.bytes) {
      this.waiter = null;
      w.resolve();
    }
  }

  /** Resolves once `bytes` are buffered; rejects if the stream ends first. */
  need(bytes: number): Promise<void> {
    if (this.length >= bytes) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { bytes, resolve, reject };
    });
  }

  /** No more bytes will come: pending and later `need` calls fail with `err`. */
  fail(err: Error = new NbdError('CONNECTION_CLOSED', 'connection closed')): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(this.failure);
  }

  /** The next `bytes` bytes as one buffer, without consuming them. Requires length >= bytes. */
  peek(bytes: number): Buffer {
    let first = this.chunks[0]!;
    if (first.length - this.head < bytes) {
      this.coalesce(bytes);
      first = this.chunks[0]!;
    }
    return first.subarray(this.head, this.head + bytes);
  }

  /** Consumes and returns the next `bytes` bytes. Requires length >= bytes. */
  take(bytes: number): Buffer {
    if (bytes === 0) return Buffer.alloc(0);
    const view = this.peek(bytes);
    this.consume(bytes);
    return view;
  }

  /**
   * Like take, but bytes that straddle chunks are copied into `scratch` (at
   * least `bytes` long) instead of a new buffer: the result is only valid
   * until the next call that reuses `scratch`.
   */
  takeTransient(bytes: number, scratch: Buffer): Buffer {
    const first = this.chunks[0];
    if (bytes === 0 || first === undefined) return Buffer.alloc(0);
    if (first.length - this.head >= bytes) {
      const view = first.subarray(this.head, this.head + bytes);
      this.consume(bytes);
      return view;
    }
    let filled = 0;
    while (filled < bytes) {
      const chunk = this.chunks[0]!;
      const take = Math.min(chunk.length - this.head, bytes - filled);
      chunk.copy(scratch, filled, this.head, this.head + take);
      filled += take;
      this.consume(take);
    }
    return scratch.subarray(0, bytes);
  }

  /** Consumes the next `bytes` bytes and returns them as a view when one received chunk holds them all; else null (nothing consumed). */
  takeWhole(bytes: number): Buffer | null {
    const first = this.chunks[0];
    if (bytes === 0 || first === undefined || first.length - this.head < bytes) return null;
    const view = first.subarray(this.head, this.head + bytes);
    this.consume(bytes);
    return view;
  }

  /** Whether unconsumed bytes still live in `memory` (so it must not be overwritten). */
  holds(memory: ArrayBufferLike): boolean {
    for (const chunk of this.chunks) if (chunk.buffer === memory) return true;
    return false;
  }

  /** Consumes up to `bytes` bytes; returns how many. */
  skip(bytes: number): number {
    const n = Math.min(bytes, this.length);
    this.consume(n);
    return n;
  }

  /** Everything still buffered, consumed (for handing the stream to TLS). */
  drain(): Buffer {
    return this.take(this.length);
  }

  private consume(bytes: number): void {
    this.length -= bytes;
    let left = bytes;
    while (left > 0) {
      const first = this.chunks[0]!;
      const avail = first.length - this.head;
      if (left < avail) {
        this.head += left;
        return;
      }
      left -= avail;
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** Merges leading chunks so that chunks[0] holds at least `bytes` unconsumed bytes. */
  private coalesce(bytes: number): void {
    const merged = Buffer.allocUnsafe(Math.max(bytes, 0));
    let filled = 0;
    while (filled < bytes) {
      const first = this.chunks[0]!;
      const avail = first.length - this.head;
      const take = Math.min(avail, bytes - filled);
      first.copy(merged, filled, this.head, this.head + take);
      filled += take;
      if (take === avail) {
        this.chunks.shift();
        this.head = 0;
      } else this.head += take;
    }
    if (this.head > 0) {
      this.chunks[0] = this.chunks[0]!.subarray(this.head);
      this.head = 0;
    }
    this.chunks.unshift(merged);
  }
}
