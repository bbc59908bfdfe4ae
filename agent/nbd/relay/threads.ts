/**
 * Transmission threads: worker threads that each own one NBD connection's
 * socket once it reads (worker.mts, relay.ts). The event loop is one
 * CPU; with several VMs reading at once, their reads, socket calls and
 * client wake-ups then run on as many threads as the host has cores, and a
 * read the page cache misses waits on the connection's own thread instead
 * of the threadpool's round trip.
 *
 * A connection moves to a thread after its first READ (server.ts: one that
 * only writes costs less on the event loop), to a ready one (started and
 * loaded; SPARE_THREADS are kept ready), or, if none is, as soon as one is
 * (between two of its requests). At most `max` threads exist, one per
 * connection; a thread whose connection ended waits for the next;
 * connections beyond `max` stay on the event loop. Not for TLS connections
 * (the TLS session lives on the event loop) or without koffi.
 * Cost per thread: a V8 isolate and its buffers (about 13 MB of memory) and
 * 50 ms of CPU to start.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type MessagePort, Worker } from 'node:worker_threads';
import { libcFunction } from '../../native/libc';
import type { DirectReads, NbdBackend } from '../backend';
import type { NbdConnection } from '../connection';
import {
  CMD,
  CMD_FLAG,
  MAX_PAYLOAD,
  REPLY_FLAG_DONE,
  REPLY_TYPE,
  REQUEST_HEADER_BYTES,
  REQUEST_MAGIC,
  SIMPLE_REPLY_BYTES,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
} from '../constants';
import { DATA_CHUNK_PREFIX } from '../replies';
import { SPARSE_READ_MIN } from '../transmission';
import { EPOCH_SLOT, MAX_MAPPED_BLOCKS, ReadMap, ZERO_ENTRY } from './read-map';
import { RELAY_CONTROL, Relay, type RelayNative } from './relay';
import type { RelayAssignment, RelayWorkerData, WireConstants } from './worker.mjs';

/** Free threads kept ready for the next connections (at most `max` in all). */
const SPARE_THREADS = 4;

/** Address maps kept for exports no connection reads now (a client that reconnects finds its addresses). */
const KEPT_MAPS = 16;

/** Longest read a thread answers itself (longer ones go to the event loop and its threadpool). */
const THREAD_READ_MAX = 4 * 1024 * 1024;

const WIRE: WireConstants = {
  requestMagic: REQUEST_MAGIC,
  requestHeaderBytes: REQUEST_HEADER_BYTES,
  simpleReplyBytes: SIMPLE_REPLY_BYTES,
  dataChunkPrefix: DATA_CHUNK_PREFIX,
  simpleReplyMagic: SIMPLE_REPLY_MAGIC,
  structuredReplyMagic: STRUCTURED_REPLY_MAGIC,
  cmdRead: CMD.READ,
  cmdWrite: CMD.WRITE,
  cmdDisc: CMD.DISC,
  flagFua: CMD_FLAG.FUA,
  flagDf: CMD_FLAG.DF,
  replyTypeOffsetData: REPLY_TYPE.OFFSET_DATA,
  replyFlagDone: REPLY_FLAG_DONE,
  sparseReadMin: SPARSE_READ_MIN,
  maxRead: Math.min(THREAD_READ_MAX, MAX_PAYLOAD),
  epochIndex: EPOCH_SLOT,
  stoppedIndex: RELAY_CONTROL.STOPPED,
  socketClosedIndex: RELAY_CONTROL.SOCKET_CLOSED,
  starvingIndex: RELAY_CONTROL.STARVING,
  sleepingIndex: RELAY_CONTROL.SLEEPING,
  postedIndex: RELAY_CONTROL.POSTED,
  queuedIndex: RELAY_CONTROL.QUEUED,
  drainWantedIndex: RELAY_CONTROL.DRAIN_WANTED,
  zeroEntry: ZERO_ENTRY,
};

/** The thread's code: the bundle's build of it next to the agent's bundle, else the source. */
function workerFile(): string {
  const bundled = path.join(__dirname, 'nbd-relay-worker.js');
  return fs.existsSync(bundled) ? bundled : path.join(__dirname, 'worker.mts');
}

type Dup = (fd: number) => number;

interface Native extends RelayNative {
  dup: Dup;
}

/** The libc calls the event loop's side makes, or null without koffi. */
function loadNative(): Native | null {
  const dup = libcFunction('int dup(int)') as Dup | null;
  const eventfd = libcFunction('int eventfd(unsigned int, int)') as ((n: number, f: number) => number) | null;
  const write = libcFunction('intptr_t write(int, void *, size_t)') as
    | ((fd: number, b: Buffer, n: number) => number)
    | null;
  const close = libcFunction('int close(int)') as ((fd: number) => number) | null;
  if (!dup || !eventfd || !write || !close) return null;
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  const EFD_CLOEXEC = 0o2000000;
  return {
    dup,
    eventfd: () => eventfd(0, EFD_CLOEXEC),
    wake: (fd) => {
      write(fd, one, 8);
    },
    close: (fd) => {
      close(fd);
    },
  };
}

/** What the server passes for a connection whose handshake ended. */
export interface ThreadCandidate {
  conn: NbdConnection;
  backend: NbdBackend;
  structured: boolean;
  busy: () => boolean;
  idle: () => Promise<void>;
  inFlight: () => boolean;
  /** Whether the connection may move to a thread now (not in the middle of a request's bytes, not ending). */
  movable: () => boolean;
}

interface Thread {
  worker: Worker;
  ready: boolean;
  busy: boolean;
  /** The connection it serves. */
  relay: Relay | null;
}

export class TransmissionThreads {
  private readonly threads = new Set<Thread>();
  private readonly native: Native | null;
  private closed = false;
  /** A thread failed to load (koffi missing in it): no more are started. */
  private broken = false;
  /** Connections on the event loop until a thread is ready for them. */
  private readonly waiting: ThreadCandidate[] = [];
  /** Address maps by what they map (DirectReads.key): in use, or kept (most recently used last). */
  private readonly maps = new Map<string, { map: ReadMap; users: number; unlisten: () => void }>();

  /** `max`: threads at most (0: none, every connection on the event loop). `onError`: a thread failed. */
  constructor(
    private readonly max: number,
    private readonly onError: (err: unknown) => void,
  ) {
    // Threads start with the first connection that reads (a server that never gets one, TLS only, starts none).
    this.native = max > 0 ? loadNative() : null;
  }

  /** Threads started (serving or waiting). */
  get count(): number {
    return this.threads.size;
  }

  /** Connections served by a thread now. */
  get serving(): number {
    return [...this.threads].filter((t) => t.busy).length;
  }

  /** Reads the threads answered themselves (not through the event loop), since the server started. */
  get reads(): number {
    let live = 0;
    for (const t of this.threads) live += t.relay?.reads ?? 0;
    return this.finishedReads + live;
  }

  private finishedReads = 0;

  /**
   * Hands the connection to a ready thread now (true), or serves it on the
   * event loop until one is ready (false: a thread is started, and the
   * connection moves to it when it is, between two of its requests).
   */
  take(c: ThreadCandidate): boolean {
    const native = this.native;
    const direct = c.backend.directReads;
    if (native === null || this.closed || direct === undefined || c.conn.tls) return false;
    if (Math.ceil(c.backend.size / direct.blockSize) > MAX_MAPPED_BLOCKS) return false;
    if (this.assign(c)) return true;
    this.waiting.push(c);
    c.conn.onClose(() => this.forget(c));
    this.keepSpares();
    return false;
  }

  /** Moves waiting connections to ready threads (when a thread became ready or free). */
  private serveWaiting(): void {
    for (const c of [...this.waiting]) {
      if (!this.threadFree()) return;
      if (!c.movable()) {
        // Mid-request (a refused write's payload, a disconnect): once idle, try again.
        void c.idle().then(() => setImmediate(() => this.serveWaiting()));
        continue;
      }
      this.forget(c);
      this.assign(c);
    }
  }

  private forget(c: ThreadCandidate): void {
    const i = this.waiting.indexOf(c);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  private threadFree(): Thread | undefined {
    return [...this.threads].find((t) => t.ready && !t.busy);
  }

  private assign(c: ThreadCandidate): boolean {
    const native = this.native!;
    const direct = c.backend.directReads!;
    const thread = this.threadFree();
    if (thread === undefined || c.conn.closed || !c.movable()) return false;
    const wakeFd = native.eventfd();
    if (wakeFd < 0) return false;
    const held = this.mapFor(direct, Math.ceil(c.backend.size / direct.blockSize));
    const map = held.map;
    const handed = c.conn.handOver(native.dup, (socket) => {
      thread.busy = true;
      held.users++;
      thread.relay = new Relay(
        {
          conn: c.conn,
          map,
          locate: (first, count) => direct.locate(first, count),
          onStop: (stopped) => direct.onStop(stopped),
          structured: c.structured,
          size: c.backend.size,
          blockSize: direct.blockSize,
          dataPaths: direct.paths,
          wire: WIRE,
          busy: c.busy,
          idle: c.idle,
          inFlight: c.inFlight,
        },
        native,
        wakeFd,
        socket.fd,
        socket.pending,
        (data: RelayWorkerData, port: MessagePort) =>
          thread.worker.postMessage({ serve: data } satisfies RelayAssignment, [port]),
        () => {
          this.finishedReads += thread.relay?.reads ?? 0;
          thread.busy = false;
          thread.relay = null;
          this.releaseMap(direct.key);
          this.serveWaiting();
        },
      );
      return thread.relay;
    });
    if (!handed) {
      native.close(wakeFd);
      this.trimMaps();
    }
    // The next connection finds one ready too.
    else this.keepSpares();
    return handed;
  }

  /** The address map of what `direct` reads (a kept one, or a new one listening to the engine). */
  private mapFor(direct: DirectReads, blocks: number) {
    const key = direct.key;
    let held = this.maps.get(key);
    if (held === undefined || held.map.blocks !== blocks) {
      held?.unlisten();
      const map = new ReadMap(blocks);
      held = { map, users: 0, unlisten: direct.listen(map) };
    }
    // Most recently used last.
    this.maps.delete(key);
    this.maps.set(key, held);
    return held;
  }

  /** One connection less reads this map. */
  private releaseMap(key: string): void {
    const held = this.maps.get(key);
    if (held !== undefined && held.users > 0) held.users--;
    this.trimMaps();
  }

  /** Unused maps beyond KEPT_MAPS stop listening and go, oldest first. */
  private trimMaps(): void {
    let unused = [...this.maps.values()].filter((h) => h.users === 0).length;
    for (const [k, h] of this.maps) {
      if (unused <= KEPT_MAPS) break;
      if (h.users > 0) continue;
      h.unlisten();
      this.maps.delete(k);
      unused--;
    }
  }

  /** Ends the threads (the server destroyed their connections first). */
  async close(): Promise<void> {
    this.closed = true;
    for (const held of this.maps.values()) held.unlisten();
    this.maps.clear();
    // Asked, not terminated: a thread cut off inside a native call takes the process down.
    const ended = [...this.threads].map(
      (t) =>
        new Promise<void>((resolve) => {
          t.worker.once('exit', () => resolve());
          t.worker.postMessage('exit');
        }),
    );
    // Serving threads end with their connections (the server destroyed them); a stuck one is left behind (unref'd).
    await Promise.race([Promise.all(ended), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
  }

  /**
   * Starts threads until SPARE_THREADS are free (started or starting), and
   * one more for each connection waiting: a client opening several
   * connections at once (nbdcopy opens four) finds a thread for each instead
   * of waiting on the event loop for one to start.
   */
  private keepSpares(): void {
    let free = [...this.threads].filter((t) => !t.busy).length - this.waiting.length;
    while (free < SPARE_THREADS && this.threads.size < this.max && !this.broken && !this.closed) {
      this.spawn();
      free++;
    }
  }

  private spawn(): void {
    if (this.closed || this.broken || this.threads.size >= this.max) return;
    const worker = new Worker(workerFile());
    const thread: Thread = { worker, ready: false, busy: false, relay: null };
    this.threads.add(thread);
    worker.unref();
    worker.once('message', (m) => {
      if (m !== 'ready') return;
      thread.ready = true;
      this.serveWaiting();
    });
    worker.on('error', (err) => this.onError(err));
    worker.on('exit', () => {
      this.threads.delete(thread);
      if (!thread.ready) this.broken = true;
      // Its connection cannot go on without it.
      thread.relay?.lost();
    });
  }
}
