/**
 * One client connection: the socket (plain, later maybe TLS), the bytes
 * received from it, and orderly or hard close. Socket errors end the
 * connection, never the process.
 */
import type * as net from 'node:net';
import { Socket as NetSocket } from 'node:net';
import type * as tls from 'node:tls';
import { ByteQueue } from './byte-queue';
import { NbdError } from './errors';
import { raiseSendBuffer } from './send-buffer';
import { type TlsPolicy, upgradeToTls } from './tls';
import { type UnixPeer, unixPeer, unixPeerLabel } from './unix-peer';

/** Receive arenas: reads land in an arena's unused tail and are handed on without copying. */
const ARENA_BYTES = 4 * 1024 * 1024;
const MIN_READ_BYTES = 64 * 1024;
const MAX_ARENAS = 4;

/**
 * Where the next read goes. An arena is reused once the queue holds none of
 * its bytes and none of them is lent out (a WRITE's payload, read by the
 * device write until it completes: lent rather than copied, a copy of 1 MiB
 * costs about as much as the rest of the request on the event loop); big
 * buffers are not allocated per read (each costs ~0.1 ms).
 */
class Arenas {
  private readonly all: Buffer[] = [Buffer.allocUnsafe(ARENA_BYTES)];
  private current = this.all[0]!;
  private used = 0;
  /** Views lent out, by the arena memory they lie in. */
  private readonly lent = new Map<ArrayBufferLike, number>();

  constructor(private readonly queue: ByteQueue) {}

  next(): Buffer {
    if (!this.busy(this.current)) this.used = 0;
    else if (this.current.length - this.used < MIN_READ_BYTES) {
      const free = this.all.find((a) => a !== this.current && !this.busy(a));
      this.current = free ?? Buffer.allocUnsafe(ARENA_BYTES);
      if (!free && this.all.length < MAX_ARENAS) this.all.push(this.current);
      this.used = 0;
    }
    return this.current.subarray(this.used);
  }

  filled(bytes: number): void {
    this.used += bytes;
  }

  /** Keeps `view`'s bytes from being overwritten until the returned release runs; null if no arena holds it. */
  lend(view: Buffer): (() => void) | null {
    const memory = view.buffer;
    if (memory !== this.current.buffer && !this.all.some((a) => a.buffer === memory)) return null;
    this.lent.set(memory, (this.lent.get(memory) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.lent.get(memory)! - 1;
      if (left === 0) this.lent.delete(memory);
      else this.lent.set(memory, left);
    };
  }

  private busy(arena: Buffer): boolean {
    return this.lent.has(arena.buffer) || this.queue.holds(arena.buffer);
  }
}

/**
 * Re-creates an accepted (paused) socket with `onread`, so the kernel fills
 * our arenas directly, up to megabytes per read. Node's 'data' path reads
 * 64 KiB at a time and tops out near 2 GB/s, below what NBD writes need. Uses
 * the socket's handle, which Node does not document: if it is not there, the
 * plain socket is used as is.
 */
function withArenaReads(socket: net.Socket, arenas: Arenas, onData: (data: Buffer) => void): net.Socket {
  const internal = socket as unknown as { _handle?: unknown };
  const handle = internal._handle;
  if (!handle) return socket;
  internal._handle = null;
  const fast = new NetSocket({
    handle,
    onread: {
      buffer: () => arenas.next(),
      callback: (bytes: number, buffer: Uint8Array) => {
        arenas.filled(bytes);
        onData(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
        return true;
      },
    },
  } as unknown as net.SocketConstructorOpts);
  // The accepted socket lets go (without its handle) so the server's connection count stays right.
  socket.destroy();
  fast.resume();
  return fast;
}

/** Where replies go once another thread owns the socket (relay/relay.ts). */
export interface Transport {
  send(data: Buffer, written?: () => void): void;
  /** Reply bytes handed to it and not yet written to the socket. */
  unsentBytes(): number;
  /** Calls `drained` once, when every reply handed to it so far was written to the socket. */
  whenDrained(drained: () => void): void;
  cork(): void;
  uncork(): void;
  end(): void;
  destroy(): void;
}

/** The socket handed to another thread: its descriptor (a duplicate) and the bytes received but not parsed. */
export interface HandedSocket {
  fd: number;
  pending: Buffer;
}

export class NbdConnection {
  readonly queue = new ByteQueue();
  stream: net.Socket | tls.TLSSocket;
  closed = false;
  tls = false;
  /** Called after new bytes arrived (transmission phase). */
  onBytes: (() => void) | null = null;
  /** Called once TLS is established, the client's certificate or PSK checked (tls.ts). */
  onSecure: (() => void) | null = null;
  private readonly closeHandlers: Array<() => void> = [];
  private readonly onData = (data: Buffer) => {
    this.queue.push(data);
    this.onBytes?.();
  };

  readonly socket: net.Socket;
  /** Where the kernel puts received bytes (arena reads), or null ('data' events: Node's buffers). */
  private readonly arenas: Arenas | null;

  /** `arenaReads`: the socket was accepted paused and will never be upgraded to TLS. */
  constructor(
    accepted: net.Socket,
    private readonly onError: (err: unknown) => void,
    arenaReads = false,
  ) {
    // A Unix-socket peer has no address: name its process (or, unknown, the socket) instead.
    this.unixPeer = accepted.remoteAddress === undefined ? unixPeer(accepted) : null;
    const remote =
      accepted.remoteAddress !== undefined
        ? `${accepted.remoteAddress}:${accepted.remotePort}`
        : this.unixPeer !== null
          ? unixPeerLabel(this.unixPeer)
          : `unix:${accepted.localAddress ?? 'socket'}`;
    // Room for whole large read replies (send-buffer.ts); TCP sizes its own.
    if (accepted.remoteAddress === undefined) raiseSendBuffer(accepted);
    this.arenas = arenaReads ? new Arenas(this.queue) : null;
    this.socket = this.arenas ? withArenaReads(accepted, this.arenas, this.onData) : accepted;
    this.remote = remote;
    this.stream = this.socket;
    this.socket.setNoDelay(true);
    this.listen(this.socket, this.socket !== accepted);
    if (this.socket === accepted && accepted.isPaused()) accepted.resume();
  }

  readonly remote: string;

  /** The process on the other end of a Unix-socket connection, when the kernel says (unix-peer.ts). */
  readonly unixPeer: UnixPeer | null;

  onClose(handler: () => void): void {
    if (this.closed) handler();
    else this.closeHandlers.push(handler);
  }

  /** Set once another thread owns the socket: everything goes through it. */
  private transport: Transport | null = null;

  /**
   * Hands the socket to another thread (relay/): the descriptor is
   * duplicated with `dup` and this side's socket closed without ending the
   * connection; `attach` gets the duplicate and the unparsed bytes and
   * returns the transport replies go through from now on. False (nothing
   * changed) for a TLS connection, a closed one, or a socket without a descriptor.
   */
  handOver(dup: (fd: number) => number, attach: (socket: HandedSocket) => Transport): boolean {
    if (this.tls || this.closed || this.transport !== null) return false;
    // Bytes the socket still holds would be lost with it.
    if (this.socket.writableLength > 0 || this.socket.writableCorked > 0) return false;
    const fd = (this.socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return false;
    const copy = dup(fd);
    if (copy < 0) return false;
    const pending = Buffer.from(this.queue.drain());
    this.transport = attach({ fd: copy, pending });
    // Its events no longer concern the connection (listen() checks `transport`).
    this.socket.destroy();
    return true;
  }

  /** The other thread is done with the connection: it is closed. */
  transportClosed(): void {
    this.closedNow();
  }

  /**
   * Queues `data`; `written` runs once the socket no longer needs the buffer.
   * On a closed connection the reply is dropped at once (nothing keeps it).
   */
  send(data: Buffer, written?: () => void): void {
    if (this.closed) {
      written?.();
      return;
    }
    if (this.transport) {
      this.transport.send(data, written);
      return;
    }
    this.stream.write(data, written);
  }

  /** Reply bytes queued and not yet written to the socket (what a client that does not read makes the agent hold). */
  unsentBytes(): number {
    if (this.closed) return 0;
    return this.transport ? this.transport.unsentBytes() : this.stream.writableLength;
  }

  /**
   * Calls `drained` once the replies queued so far were written (soon if
   * fewer than the socket's high-water mark wait); never once closed.
   */
  whenDrained(drained: () => void): void {
    if (this.closed) return;
    if (this.transport) this.transport.whenDrained(drained);
    // Node emits 'drain' once its buffer is empty after a write that found it above the high-water mark.
    else if (this.stream.writableNeedDrain) this.stream.once('drain', drained);
    // Below the mark: soon, but after this turn's I/O (never a loop of microtasks).
    else setImmediate(drained);
  }

  /**
   * Stops (true) or resumes (false) receiving while the transmission takes no
   * new request: bytes the client keeps sending then wait in the kernel, not
   * in the agent. A relayed connection's thread stops by itself once the
   * event loop holds all its receive slots.
   */
  holdReceiving(hold: boolean): void {
    if (this.transport || this.closed) return;
    if (hold) this.stream.pause();
    else this.stream.resume();
  }

  cork(): void {
    if (this.transport) this.transport.cork();
    else this.stream.cork();
  }

  uncork(): void {
    if (this.transport) this.transport.uncork();
    else this.stream.uncork();
  }

  /**
   * Received bytes (a view the queue just gave) kept as they are until the
   * returned release runs, so a WRITE's payload need not be copied; null
   * where they are not in this connection's receive arenas (then copy them).
   */
  lendReceived(view: Buffer): (() => void) | null {
    return this.arenas?.lend(view) ?? null;
  }

  /** Switches to TLS right after the STARTTLS acknowledgement was written. */
  startTls(policy: TlsPolicy): void {
    if (this.queue.length > 0) {
      throw new NbdError('PROTOCOL_VIOLATION', 'client sent data before the STARTTLS reply');
    }
    this.socket.removeListener('data', this.onData);
    const secure = upgradeToTls(this.socket, policy);
    // Registered after the certificate check (upgradeToTls), which destroys a refused client.
    secure.once('secure', () => {
      if (!secure.destroyed) this.onSecure?.();
    });
    this.stream = secure;
    this.tls = true;
    this.listen(secure);
  }

  /** Orderly close (after a soft disconnect): flush what is queued, then close. */
  end(): void {
    if (this.closed) return;
    if (this.transport) {
      this.transport.end();
      return;
    }
    this.stream.end();
    // The client closes its side after a soft disconnect; do not wait forever if it does not.
    setTimeout(() => this.destroy(), 5000).unref();
  }

  /** Hard disconnect. */
  destroy(): void {
    if (this.transport) {
      if (!this.closed) this.transport.destroy();
      return;
    }
    if (!this.stream.destroyed) this.stream.destroy();
    if (!this.socket.destroyed) this.socket.destroy();
  }

  private listen(stream: net.Socket | tls.TLSSocket, arena = false): void {
    if (!arena) stream.on('data', this.onData);
    stream.on('end', () => {
      if (!this.transport) this.queue.fail();
    });
    stream.on('error', (err) => {
      if (this.transport) return;
      const code = (err as NodeJS.ErrnoException).code;
      // A client going away mid-stream is normal; anything else is worth a log line.
      if (code !== 'ECONNRESET' && code !== 'EPIPE') {
        this.onError(stream === this.socket ? err : new NbdError('TLS_FAILED', `TLS: ${err.message}`));
      }
      this.destroy();
    });
    stream.on('close', () => {
      if (!this.transport) this.closedNow();
    });
  }

  private closedNow(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.fail();
    for (const handler of this.closeHandlers.splice(0)) handler();
  }
}
