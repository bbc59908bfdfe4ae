/**
 * One connection served by a transmission thread (worker.mts), seen from the
 * event loop: the transport NbdConnection sends through once the socket is
 * the thread's. The thread passes up the requests it does not answer (their
 * bytes go into the connection's queue, where Transmission parses them as
 * ever) and asks for block addresses (read-map.ts); replies come down in one
 * message per turn of the event loop, and an eventfd wakes the thread.
 *
 * The thread waits for the disk only while this connection has nothing
 * else to do: each message down says whether the event loop still has one
 * of its requests, and when it becomes idle it says so.
 */
import type { MessagePort } from 'node:worker_threads';
import { MessageChannel } from 'node:worker_threads';
import type { NbdConnection, Transport } from '../connection';
import type { Locate, ReadMap } from './read-map';

/**
 * Slots of a relayed connection's control array: its session stopped; its
 * thread closed the socket (set just before); reply bytes posted to the
 * thread and not taken yet (the event loop adds, the thread subtracts);
 * reply bytes the thread holds unsent; 1 while the event loop waits for
 * both to reach 0 (the thread then clears it and says `drained`).
 */
export const RELAY_CONTROL = {
  STOPPED: 0,
  SOCKET_CLOSED: 1,
  STARVING: 2,
  SLEEPING: 3,
  POSTED: 4,
  QUEUED: 5,
  DRAIN_WANTED: 6,
} as const;

// Types only: the thread's module runs in the thread, never here.
import type { RelayDownMessage, RelayUpMessage, RelayWorkerData, WireConstants } from './worker.mjs';

/** Receive slots a thread may have (worker.mts): with none free, what it passes up is copied. */
const RELAY_SLOTS = 8;

/** What the event loop's side of a relayed connection needs. */
export interface RelaySetup {
  conn: NbdConnection;
  /** The export's addresses (shared with other connections of the same export). */
  map: ReadMap;
  /** Where blocks are, asked through this connection's session. */
  locate: Locate;
  /** Runs its argument once the session stops; returns the call that cancels it. */
  onStop: (stopped: () => void) => () => void;
  structured: boolean;
  size: number;
  blockSize: number;
  /** The pool's data files, in layout order (engine/store/data-layout.ts). */
  dataPaths: string[];
  wire: WireConstants;
  /** Requests of this connection in flight or queued on the event loop. */
  busy: () => boolean;
  /** Resolves once none is in flight. */
  idle: () => Promise<void>;
  /** Whether a request of this connection is in flight (not only bytes of one waiting for the rest). */
  inFlight: () => boolean;
}

/** The native calls the event loop's side makes (threads.ts loads them). */
export interface RelayNative {
  eventfd(): number;
  /** Wakes the thread: adds one to the eventfd. */
  wake(fd: number): void;
  close(fd: number): void;
}

export class Relay implements Transport {
  private readonly port: MessagePort;
  private out: Buffer[] = [];
  private outBytes = 0;
  private written: Array<() => void> = [];
  private corks = 0;
  private flushQueued = false;
  /** Requests passed up so far, as the thread last said. */
  private seen = 0;
  private watchingIdle = false;
  private done = false;
  private readonly control = new Int32Array(new SharedArrayBuffer(32));
  private drained: (() => void) | null = null;
  /** [reads answered by the thread, their bytes]. */
  private readonly answered = new Float64Array(new SharedArrayBuffer(16));
  private readonly cancelStop: () => void;
  /** The thread's receive slots (worker.mts): their memory, and 1 while the queue holds bytes of one. */
  private readonly slots: SharedArrayBuffer[] = [];
  private readonly slotStates = new Int32Array(new SharedArrayBuffer(4 * RELAY_SLOTS));
  /** Slots whose bytes came up and are not given back yet. */
  private readonly slotsHeld = new Set<number>();

  constructor(
    private readonly setup: RelaySetup,
    private readonly native: RelayNative,
    private readonly wakeFd: number,
    private readonly socketFd: number,
    initial: Buffer,
    post: (data: RelayWorkerData, port: MessagePort) => void,
    /** Called once the thread is done with the connection (it may serve another). */
    private readonly released: () => void,
  ) {
    // A stopped session reads nothing more on the thread (its requests then fail on the event loop, ESHUTDOWN).
    this.cancelStop = setup.onStop(() => Atomics.store(this.control, RELAY_CONTROL.STOPPED, 1));
    const channel = new MessageChannel();
    this.port = channel.port1;
    this.port.on('message', (m: RelayUpMessage) => this.up(m));
    // The listening socket keeps the agent alive, not a client's connection.
    this.port.unref();
    post(
      {
        socketFd,
        wakeFd,
        dataPaths: setup.dataPaths,
        blockSize: setup.blockSize,
        size: setup.size,
        structured: setup.structured,
        control: this.control.buffer as SharedArrayBuffer,
        epoch: setup.map.epoch,
        entries: setup.map.entries,
        answered: this.answered.buffer as SharedArrayBuffer,
        initial: new Uint8Array(initial),
        slotStates: this.slotStates.buffer as SharedArrayBuffer,
        port: channel.port2,
        wire: setup.wire,
      },
      channel.port2,
    );
  }

  /** Reads the thread answered itself. */
  get reads(): number {
    return this.answered[0]!;
  }

  // ---- Transport (NbdConnection sends through these) ----

  send(data: Buffer, written?: () => void): void {
    if (this.done) return;
    this.out.push(data);
    this.outBytes += data.length;
    if (written) this.written.push(written);
    if (this.corks === 0 && !this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(() => {
        this.flushQueued = false;
        this.flush();
      });
    }
  }

  unsentBytes(): number {
    if (this.done) return 0;
    return (
      this.outBytes +
      Atomics.load(this.control, RELAY_CONTROL.POSTED) +
      Atomics.load(this.control, RELAY_CONTROL.QUEUED)
    );
  }

  whenDrained(drained: () => void): void {
    if (this.done) return;
    this.drained = drained;
    // Set before looking: the thread empties its queue, then looks at the flag (one of the two sees the other).
    Atomics.store(this.control, RELAY_CONTROL.DRAIN_WANTED, 1);
    if (this.unsentBytes() === 0) this.takeDrained();
    else if (Atomics.load(this.control, RELAY_CONTROL.SLEEPING) === 1) this.native.wake(this.wakeFd);
  }

  private takeDrained(): void {
    Atomics.store(this.control, RELAY_CONTROL.DRAIN_WANTED, 0);
    const drained = this.drained;
    this.drained = null;
    if (drained) queueMicrotask(drained);
  }

  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (this.corks > 0 && --this.corks === 0) this.flush();
  }

  end(): void {
    this.flush();
    this.down({ end: true });
  }

  destroy(): void {
    this.down({ destroy: true });
  }

  // ---- the thread's messages ----

  private up(m: RelayUpMessage): void {
    const conn = this.setup.conn;
    // A stopped session locates nothing (its requests fail on the event loop).
    if (m.fills && Atomics.load(this.control, RELAY_CONTROL.STOPPED) === 0)
      for (let i = 0; i + 1 < m.fills.length; i += 2)
        this.setup.map.fill(m.fills[i]!, m.fills[i + 1]!, this.setup.locate);
    this.seen = m.passed;
    if (m.slotMemory !== undefined && m.slot !== undefined) this.slots[m.slot] = m.slotMemory;
    if (!this.done && (m.bytes || m.ranges)) {
      if (m.bytes) conn.queue.push(Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength));
      const memory = m.slot !== undefined ? this.slots[m.slot] : undefined;
      if (m.ranges && memory)
        for (let i = 0; i + 1 < m.ranges.length; i += 2)
          conn.queue.push(Buffer.from(memory, m.ranges[i]!, m.ranges[i + 1]! - m.ranges[i]!));
      if (m.slot !== undefined) this.slotsHeld.add(m.slot);
      conn.onBytes?.();
      this.giveBackParsed();
    }
    if (m.closed !== undefined) this.finish();
    else {
      if (m.drained) this.takeDrained();
      this.tellWhenIdle();
    }
  }

  /**
   * Parsed: a slot whose bytes came (this message or an earlier one) and that the queue holds nothing of
   * is the thread's again. Never one whose message is still on its way: the thread sends a slot only when
   * free. Run on every message up and down: requests held back (in-flight limit, a write under way) are
   * parsed later, and a thread that starved for a slot sends nothing up until one is given back.
   */
  private giveBackParsed(): void {
    let freed = false;
    for (const i of this.slotsHeld)
      if (!this.setup.conn.queue.holds(this.slots[i]!)) {
        this.slotsHeld.delete(i);
        Atomics.store(this.slotStates, i, 0);
        freed = true;
      }
    // It stopped receiving for want of one.
    if (freed && Atomics.load(this.control, RELAY_CONTROL.STARVING) === 1) this.native.wake(this.wakeFd);
  }

  /** The thread ended without a word (it crashed): the connection is closed. */
  lost(): void {
    // It never got to close the socket: the client would wait forever.
    if (!this.done && Atomics.load(this.control, RELAY_CONTROL.SOCKET_CLOSED) === 0)
      this.native.close(this.socketFd);
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    Atomics.store(this.control, RELAY_CONTROL.STOPPED, 1);
    this.cancelStop();
    this.port.close();
    this.native.close(this.wakeFd);
    // Replies of a closed connection are dropped, not kept.
    this.out = [];
    this.outBytes = 0;
    this.drained = null;
    for (const w of this.written.splice(0)) w();
    this.released();
    this.setup.conn.transportClosed();
  }

  /** Sends the replies of this turn down in one message. */
  private flush(): void {
    if (this.outBytes === 0 || this.done) return;
    const all = Buffer.allocUnsafeSlow(this.outBytes);
    let at = 0;
    for (const b of this.out) at += b.copy(all, at);
    this.out = [];
    this.outBytes = 0;
    for (const w of this.written.splice(0)) w();
    Atomics.add(this.control, RELAY_CONTROL.POSTED, all.length);
    this.down({ out: all }, [all.buffer as ArrayBuffer]);
  }

  private down(m: Omit<RelayDownMessage, 'seen' | 'busy'>, transfer: ArrayBuffer[] = []): void {
    if (this.done) return;
    this.giveBackParsed();
    const busy = this.setup.busy();
    this.port.postMessage({ ...m, seen: this.seen, busy } satisfies RelayDownMessage, transfer);
    // A thread that is not asleep takes it before it sleeps (worker.mts): no system call to wake it.
    if (Atomics.load(this.control, RELAY_CONTROL.SLEEPING) === 1) this.native.wake(this.wakeFd);
    if (busy) this.tellWhenIdle();
  }

  /** Once the event loop has none of this connection's requests, the thread may wait for the disk again. */
  private tellWhenIdle(): void {
    if (this.watchingIdle || this.done || !this.setup.busy()) return;
    this.watchingIdle = true;
    void this.setup.idle().then(() => {
      this.watchingIdle = false;
      // A later turn: the replies of the last requests went down first.
      setImmediate(() => {
        if (!this.setup.busy()) this.down({});
        // Requests in flight: wait for them. Only bytes of a request not all here: its rest comes up in a
        // message, which looks again (waiting for it here would spin the event loop).
        else if (this.setup.inFlight()) this.tellWhenIdle();
      });
    });
  }
}
