/**
 * The transmission phase: parse requests off the connection, run them on the
 * backend, reply. Requests start in arrival order; reads, writes and zeroes
 * run on the backend concurrently (their disk I/O on the threadpool) and are
 * answered as they complete. What one connection may cost is bounded
 * whatever its client does (TransmissionLimits): parsing, and receiving,
 * wait while it has `maxInFlight` requests running or `maxReplyBytes` of
 * replies being read or not yet taken by the client. A FLUSH first waits for the writes this connection sent before it,
 * then flushes the pool: every write acknowledged on any connection is
 * covered (what NBD_FLAG_CAN_MULTI_CONN promises). A small write the backend
 * can do at once (`writeNow`: page-cache speed, nothing it must wait for) is
 * done from the receive arena and answered in the same turn; any other write
 * payload is copied out of the arena, which is reused as soon as parsing
 * returns.
 *
 * A broken request header (bad magic) cannot be resynchronised: that
 * connection is dropped. Every other bad request gets an error reply.
 */
import type { NbdBackend, NbdExtent } from './backend';
import { MAX_STATUS_QUERY, toDescriptors } from './block-status';
import type { NbdConnection } from './connection';
import {
  BASE_ALLOCATION_ID,
  CMD,
  CMD_FLAG,
  MAX_PAYLOAD,
  NBD_ERR,
  REQUEST_HEADER_BYTES,
  REQUEST_MAGIC,
  SIMPLE_REPLY_BYTES,
} from './constants';
import { errorMessage, NbdError, toNbdErrno } from './errors';
import {
  blockStatusChunk,
  DATA_CHUNK_PREFIX,
  dataChunk,
  errorChunk,
  holeChunk,
  noneChunk,
  ReplyBuffers,
  sharedBuffers,
  simpleReply,
} from './replies';

export interface Session {
  backend: NbdBackend;
  /** Structured replies negotiated. */
  structured: boolean;
  /** base:allocation selected for this export. */
  blockStatus: boolean;
}

/**
 * What one connection may hold before its requests wait in the kernel's
 * socket buffer (not read, not parsed): a client that pipelines large READs
 * and never reads the replies costs about `maxReplyBytes` plus one request.
 */
export interface TransmissionLimits {
  /** Requests started and not answered. */
  maxInFlight: number;
  /** Bytes of READ replies being read plus reply bytes not yet written to the socket. */
  maxReplyBytes: number;
}

/**
 * QEMU and fio ask up to 64 requests at once, and QD32 of 1 MiB (32 MiB)
 * or nbdcopy's 64 × 256 KiB per connection (16 MiB) stay below the bytes.
 */
export const DEFAULT_TRANSMISSION_LIMITS: TransmissionLimits = {
  maxInFlight: 64,
  maxReplyBytes: 64 * 1024 * 1024,
};

/** WRITEs up to this long are offered to the backend's `writeNow` (done in the same turn, no copy). */
const SCRATCH_BYTES = 64 * 1024;

/** Reads at least this long are split into data and hole chunks when they cover zeros. */
export const SPARSE_READ_MIN = 256 * 1024;

const invalid = (message: string) => new NbdError('INVALID_REQUEST', message, NBD_ERR.EINVAL);

export class Transmission {
  private readonly backend: NbdBackend;
  /** Payload bytes of a refused WRITE still to skip, and the error to answer it with. */
  private discard = 0;
  private discardReply: { handle: Buffer; error: NbdError } | null = null;
  /** Requests started and not answered. */
  private pending = 0;
  /** Reply bytes of the READs among them. */
  private readBytes = 0;
  /** Parsing stopped at a limit (receiving held too); a completion or the socket draining resumes it. */
  private held = false;
  private drainAwaited = false;
  private readonly drained = () => {
    this.drainAwaited = false;
    this.pump();
  };
  /** Writes, trims and zeroes in flight: a FLUSH waits for these first. */
  private readonly writes = new Set<Promise<void>>();
  private readonly idleWaiters: Array<() => void> = [];
  private disconnecting = false;
  /**
   * Called once the client's NBD_CMD_DISC is done (nothing in flight), before
   * the connection ends: the session is over then, so whoever saw the
   * connection close never finds it still attached.
   */
  onDisconnect: (() => void) | null = null;
  /**
   * Called once, after the turn that parsed the connection's first READ:
   * the server then moves it to a transmission thread (relay/). A client that
   * only writes stays on the event loop, where a write costs less.
   */
  onFirstRead: (() => void) | null = null;
  private pumping = false;
  private readonly buffers = sharedBuffers;
  /** Where a small WRITE payload that straddles two reads is put together for `writeNow`. */
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private readonly recycle = (b: Buffer) => () => this.buffers.release(b);

  constructor(
    private readonly conn: NbdConnection,
    private readonly session: Session,
    private readonly onError: (err: unknown) => void,
    private readonly limits: TransmissionLimits = DEFAULT_TRANSMISSION_LIMITS,
  ) {
    this.backend = session.backend;
  }

  /** Whether a request is in flight or bytes of one wait to be parsed. */
  get busy(): boolean {
    return this.pending > 0 || this.conn.queue.length > 0;
  }

  /** Whether a request is in flight (started and not answered yet). */
  get inFlight(): boolean {
    return this.pending > 0;
  }

  /**
   * Whether the connection may move to another thread now (relay/): not in
   * the middle of skipping a refused WRITE's payload, not disconnecting, no
   * reply held back in a cork.
   */
  get movable(): boolean {
    return this.discard === 0 && !this.disconnecting && !this.corked;
  }

  /** Resolves when no request is in flight (every started one answered). */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  start(): void {
    this.conn.onBytes = () => this.pump();
    this.pump();
  }

  private pump(): void {
    if (this.pumping || this.disconnecting) return;
    this.pumping = true;
    // Replies produced from one batch of received bytes go out in one write, when parsing ends
    // (not a tick later: a reply answered at once, a read hit or a write done now, leaves in this turn).
    const outer = !this.corked;
    if (outer) {
      this.corked = true;
      this.conn.cork();
    }
    try {
      this.parse();
    } catch (err) {
      this.onError(err);
      this.conn.destroy();
    } finally {
      if (outer) this.uncork();
      this.pumping = false;
    }
  }

  /** Whether another request may start (TransmissionLimits); if not, receiving stops until one may. */
  private room(): boolean {
    const { maxInFlight, maxReplyBytes } = this.limits;
    if (this.pending < maxInFlight && this.readBytes + this.conn.unsentBytes() < maxReplyBytes) {
      this.hold(false);
      return true;
    }
    this.hold(true);
    // A completion pumps again; with none running, only the client taking its replies makes room.
    if (this.pending === 0 && !this.drainAwaited) {
      this.drainAwaited = true;
      this.conn.whenDrained(this.drained);
    }
    return false;
  }

  private hold(held: boolean): void {
    if (this.held === held) return;
    this.held = held;
    this.conn.holdReceiving(held);
  }

  private parse(): void {
    const q = this.conn.queue;
    const size = this.backend.size;
    while (!this.conn.closed && this.room()) {
      if (this.discard > 0) {
        this.discard -= q.skip(this.discard);
        if (this.discard > 0) return;
        const { handle, error } = this.discardReply!;
        this.discardReply = null;
        this.fail(handle, error);
      }
      if (q.length < REQUEST_HEADER_BYTES) return;
      const h = q.peek(REQUEST_HEADER_BYTES);
      if (h.readUInt32BE(0) !== REQUEST_MAGIC) {
        throw new NbdError('PROTOCOL_VIOLATION', `bad request magic 0x${h.readUInt32BE(0).toString(16)}`);
      }
      const flags = h.readUInt16BE(4);
      const type = h.readUInt16BE(6);
      // Offsets past 2^53 lose precision but are far beyond any export, so they still fail the bounds check.
      const offset = h.readUInt32BE(16) * 0x100000000 + h.readUInt32BE(20);
      const length = h.readUInt32BE(24);
      const handle = h.subarray(8, 16);

      if (type === CMD.WRITE) {
        const problem = this.checkWrite(flags, offset, length, size);
        if (problem) {
          q.skip(REQUEST_HEADER_BYTES);
          this.discard = length;
          this.discardReply = { handle: Buffer.from(handle), error: problem };
          continue;
        }
        if (q.length < REQUEST_HEADER_BYTES + length) return;
        const own = Buffer.from(handle);
        q.skip(REQUEST_HEADER_BYTES);
        this.write(own, flags, offset, length);
        continue;
      }
      const own = Buffer.from(handle);
      q.skip(REQUEST_HEADER_BYTES);
      switch (type) {
        case CMD.READ:
          if (this.onFirstRead) {
            setImmediate(this.onFirstRead);
            this.onFirstRead = null;
          }
          this.read(own, flags, offset, length, size);
          break;
        case CMD.DISC:
          this.disconnect();
          return;
        case CMD.FLUSH:
          if (flags & ~CMD_FLAG.FUA) this.fail(own, invalid('FLUSH takes no flags'));
          else this.async(own, this.flushAfterWrites());
          break;
        case CMD.TRIM:
          this.trim(own, flags, offset, length, size);
          break;
        case CMD.WRITE_ZEROES:
          this.writeZeroes(own, flags, offset, length, size);
          break;
        case CMD.BLOCK_STATUS:
          this.blockStatus(own, flags, offset, length, size);
          break;
        default:
          this.fail(own, invalid(`unknown command ${type}`));
      }
    }
  }

  /**
   * Queues a reply. Replies completed in one turn of the event loop (the
   * requests of one batch of received bytes, the reads and writes whose
   * threadpool work finished together) go out in one socket write: the
   * first corks, setImmediate (once this turn's I/O callbacks ran) uncorks.
   * Not nextTick: Node runs it after each threadpool callback, so each
   * reply was a write and a wake-up of the client; on the 2-core test host
   * those wake-ups took a tenth of the event loop's time in 4-disk random writes.
   */
  private send(b: Buffer, written?: () => void): void {
    if (!this.corked) {
      this.corked = true;
      this.conn.cork();
      setImmediate(this.uncork);
    }
    this.conn.send(b, written);
  }

  private corked = false;
  private readonly uncork = () => {
    this.corked = false;
    this.conn.uncork();
  };

  /** Sends a reply buffer that came from `buffers`, and takes it back once written. */
  private sendData(b: Buffer): void {
    if (b.length >= ReplyBuffers.MIN) this.send(b, this.recycle(b));
    else this.send(b);
  }

  // ---- commands ----

  private read(handle: Buffer, flags: number, offset: number, length: number, size: number): void {
    const structured = this.session.structured;
    const allowed = CMD_FLAG.FUA | (structured ? CMD_FLAG.DF : 0);
    if (flags & ~allowed) {
      this.fail(handle, invalid(`flags 0x${flags.toString(16)} not valid for READ`));
      return;
    }
    if (length > MAX_PAYLOAD) {
      this.fail(handle, invalid(`READ of ${length} bytes exceeds ${MAX_PAYLOAD}`));
      return;
    }
    if (offset + length > size) {
      this.fail(handle, outOfBounds(offset, length, size, NBD_ERR.EINVAL));
      return;
    }
    if (length === 0) {
      this.send(structured ? noneChunk(handle) : simpleReply(handle, 0));
      return;
    }
    if (structured && length >= SPARSE_READ_MIN && !(flags & CMD_FLAG.DF)) {
      let extents: NbdExtent[];
      try {
        extents = this.backend.blockStatus(offset, length);
      } catch (err) {
        this.fail(handle, err);
        return;
      }
      if (extents.some((e) => e.zero || e.hole)) {
        this.run(handle, this.readSparse(handle, offset, length, extents), length);
        return;
      }
    }
    const reply = structured
      ? dataChunk(handle, offset, length, true, this.buffers)
      : simpleReply(handle, 0, length, this.buffers);
    const prefix = structured ? DATA_CHUNK_PREFIX : SIMPLE_REPLY_BYTES;
    let later: Promise<void> | undefined;
    try {
      later = this.backend.read(offset, reply.subarray(prefix));
    } catch (err) {
      this.buffers.release(reply);
      this.fail(handle, err);
      return;
    }
    // A page-cache hit was read at once: no promise, answered in this turn.
    if (later === undefined) {
      this.sendData(reply);
      return;
    }
    this.run(
      handle,
      later.then(
        () => this.sendData(reply),
        (err) => {
          this.buffers.release(reply);
          throw err;
        },
      ),
      length,
    );
  }

  /** Sends zeros as hole chunks, data as data chunks (read concurrently). */
  private async readSparse(handle: Buffer, offset: number, length: number, extents: NbdExtent[]) {
    const chunks: Buffer[] = [];
    const reads: Array<Promise<void> | undefined> = [];
    for (const e of extents) {
      const start = Math.max(e.offset, offset);
      const bytes = Math.min(e.offset + e.length, offset + length) - start;
      if (bytes <= 0) continue;
      if (e.zero || e.hole) chunks.push(holeChunk(handle, start, bytes, false));
      else {
        const chunk = dataChunk(handle, start, bytes, false);
        reads.push(this.backend.read(start, chunk.subarray(DATA_CHUNK_PREFIX)));
        chunks.push(chunk);
      }
    }
    await Promise.all(reads);
    // Everything was read before anything is sent, so the last chunk can carry DONE.
    const last = chunks[chunks.length - 1]!;
    last.writeUInt16BE(1, 4);
    for (const chunk of chunks) this.send(chunk);
  }

  private checkWrite(flags: number, offset: number, length: number, size: number): NbdError | null {
    if (flags & ~CMD_FLAG.FUA) return invalid(`flags 0x${flags.toString(16)} not valid for WRITE`);
    if (this.backend.readOnly) return readOnly(this.backend.name);
    if (length > MAX_PAYLOAD) return invalid(`WRITE of ${length} bytes exceeds ${MAX_PAYLOAD}`);
    if (offset + length > size) return outOfBounds(offset, length, size, NBD_ERR.ENOSPC);
    return null;
  }

  /** A WRITE whose `length` payload bytes are next in the queue. */
  private write(handle: Buffer, flags: number, offset: number, length: number): void {
    const q = this.conn.queue;
    if (length > 0 && length <= SCRATCH_BYTES && this.backend.writeNow) {
      // Tried at once, straight from the receive arena (or the scratch when it straddles reads).
      const view = q.takeTransient(length, this.scratch);
      let done: boolean;
      try {
        done = this.backend.writeNow(offset, view);
      } catch (err) {
        this.fail(handle, err);
        return;
      }
      if (!done) this.writeLater(handle, flags, offset, this.ownCopy(view));
      else if (flags & CMD_FLAG.FUA) this.runWrite(handle, flags, Promise.resolve());
      else this.send(simpleReply(handle, 0));
      return;
    }
    // The payload outlives this parse (the write completes later). Whole in one receive arena, the
    // arena lends it until then; otherwise (straddling two reads, a TLS or relayed connection) it is copied.
    const whole = q.takeWhole(length);
    const lent = whole && this.conn.lendReceived(whole);
    if (whole && lent) {
      this.writeLater(handle, flags, offset, { data: whole, release: lent });
      return;
    }
    const data = this.buffers.get(length);
    if (whole) whole.copy(data);
    else q.takeTransient(length, data);
    this.writeLater(handle, flags, offset, this.owned(data.subarray(0, length)));
  }

  private ownCopy(view: Buffer): { data: Buffer; release: () => void } {
    const data = this.buffers.get(view.length);
    view.copy(data);
    return this.owned(data.subarray(0, view.length));
  }

  /** A payload in a buffer of `buffers`, given back once the write completed. */
  private owned(data: Buffer): { data: Buffer; release: () => void } {
    return { data, release: () => this.buffers.release(data) };
  }

  private writeLater(
    handle: Buffer,
    flags: number,
    offset: number,
    payload: { data: Buffer; release: () => void },
  ): void {
    const { data, release } = payload;
    const done = data.length > 0 ? this.backend.write(offset, data) : Promise.resolve();
    this.runWrite(handle, flags, done);
    done.then(release, release);
  }

  private trim(handle: Buffer, flags: number, offset: number, length: number, size: number): void {
    if (flags & ~CMD_FLAG.FUA) {
      this.fail(handle, invalid('TRIM takes only FUA'));
      return;
    }
    if (this.backend.readOnly) {
      this.fail(handle, readOnly(this.backend.name));
      return;
    }
    if (offset + length > size) {
      this.fail(handle, outOfBounds(offset, length, size, NBD_ERR.EINVAL));
      return;
    }
    this.runWrite(handle, flags, length > 0 ? this.backend.trim(offset, length) : Promise.resolve());
  }

  private writeZeroes(handle: Buffer, flags: number, offset: number, length: number, size: number): void {
    if (flags & ~(CMD_FLAG.FUA | CMD_FLAG.NO_HOLE | CMD_FLAG.FAST_ZERO)) {
      this.fail(handle, invalid(`flags 0x${flags.toString(16)} not valid for WRITE_ZEROES`));
      return;
    }
    if (this.backend.readOnly) {
      this.fail(handle, readOnly(this.backend.name));
      return;
    }
    if (offset + length > size) {
      this.fail(handle, outOfBounds(offset, length, size, NBD_ERR.ENOSPC));
      return;
    }
    // Unmapping is fast; writing real zeros (NO_HOLE) is not.
    if (flags & CMD_FLAG.FAST_ZERO && flags & CMD_FLAG.NO_HOLE) {
      this.fail(handle, new NbdError('INVALID_REQUEST', 'NO_HOLE zeroing is not fast', NBD_ERR.ENOTSUP));
      return;
    }
    this.runWrite(
      handle,
      flags,
      length > 0
        ? this.backend.writeZeroes(offset, length, (flags & CMD_FLAG.NO_HOLE) !== 0)
        : Promise.resolve(),
    );
  }

  private blockStatus(handle: Buffer, flags: number, offset: number, length: number, size: number): void {
    if (!this.session.blockStatus) {
      this.fail(handle, invalid('BLOCK_STATUS needs base:allocation selected with SET_META_CONTEXT'));
      return;
    }
    if (flags & ~(CMD_FLAG.FUA | CMD_FLAG.REQ_ONE)) {
      this.fail(handle, invalid('bad BLOCK_STATUS flags'));
      return;
    }
    if (length === 0) {
      this.fail(handle, invalid('BLOCK_STATUS of 0 bytes'));
      return;
    }
    if (offset + length > size) {
      this.fail(handle, outOfBounds(offset, length, size, NBD_ERR.EINVAL));
      return;
    }
    try {
      const query = Math.min(length, MAX_STATUS_QUERY);
      const extents = this.backend.blockStatus(offset, query);
      const descriptors = toDescriptors(extents, length, (flags & CMD_FLAG.REQ_ONE) !== 0);
      if (descriptors.length === 0)
        throw new NbdError('INVALID_REQUEST', 'no allocation information', NBD_ERR.EIO);
      this.send(blockStatusChunk(handle, BASE_ALLOCATION_ID, descriptors));
    } catch (err) {
      this.fail(handle, err);
    }
  }

  private disconnect(): void {
    this.disconnecting = true;
    if (this.pending === 0) this.endAfterDisconnect();
  }

  private endAfterDisconnect(): void {
    this.onDisconnect?.();
    this.conn.end();
  }

  // ---- replies ----

  /** A write, trim or zeroing: FUA flushes once it completed; a later FLUSH waits for it. */
  private runWrite(handle: Buffer, flags: number, work: Promise<void>): void {
    const done = flags & CMD_FLAG.FUA ? work.then(() => this.backend.flush()) : work;
    const settled = done.then(
      () => {},
      () => {},
    );
    this.writes.add(settled);
    void settled.then(() => this.writes.delete(settled));
    this.async(handle, done);
  }

  /** FLUSH: after the writes this connection sent before it, the pool-wide flush. */
  private flushAfterWrites(): Promise<void> {
    if (this.writes.size === 0) return this.backend.flush();
    return Promise.all(this.writes).then(() => this.backend.flush());
  }

  /** Replies (a simple reply) when `work` settles; DISC and `idle` wait for these. */
  private async(handle: Buffer, work: Promise<void>): void {
    this.run(
      handle,
      work.then(() => this.send(simpleReply(handle, 0))),
    );
  }

  /** Counts `work` (which sends its own reply, of `readBytes` data) in flight; answers its failure. */
  private run(handle: Buffer, work: Promise<void>, readBytes = 0): void {
    this.pending++;
    this.readBytes += readBytes;
    work
      .catch((err) => this.fail(handle, err))
      .finally(() => {
        this.pending--;
        this.readBytes -= readBytes;
        if (this.pending === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
        if (this.disconnecting && this.pending === 0) this.endAfterDisconnect();
        // Parsing stopped at a limit: go on with what is queued if there is room now.
        else if (this.held) this.pump();
      });
  }

  private fail(handle: Buffer, err: unknown): void {
    const errno = toNbdErrno(err);
    if (errno === NBD_ERR.EIO) this.onError(err);
    this.send(
      this.session.structured ? errorChunk(handle, errno, errorMessage(err)) : simpleReply(handle, errno),
    );
  }
}

function readOnly(name: string): NbdError {
  return new NbdError('READ_ONLY', `export "${name}" is read-only`, NBD_ERR.EPERM);
}

function outOfBounds(
  offset: number,
  length: number,
  size: number,
  errno: typeof NBD_ERR.EINVAL | typeof NBD_ERR.ENOSPC,
) {
  return new NbdError(
    'OUT_OF_BOUNDS',
    `offset ${offset} length ${length} is outside the export (size ${size})`,
    errno,
  );
}
