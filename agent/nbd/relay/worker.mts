/**
 * A transmission thread: owns one NBD connection's socket after the
 * handshake. It answers the reads it can from the data file itself, at the
 * block addresses the event loop gave it (read-map.ts), and passes every
 * other request, byte for byte and in order, to the event loop, whose
 * Transmission answers it; those replies come back here to be sent. So the
 * socket's system calls, the page-cache copy and the client's wake-up of the
 * common read run on this thread, next to other connections' threads.
 *
 * Rules it keeps:
 * - It reads only blocks whose address the event loop gave it, and checks
 *   after each read that the map's epoch did not move (read-map.ts): bytes
 *   read while a block may have been freed and handed out are never sent;
 *   the request goes to the event loop instead.
 * - It waits for the disk only for reads whose disk reads are under way:
 *   it reads with RWF_NOWAIT, and a page-cache miss (which starts the disk
 *   read of its range) is put aside while the other requests received are
 *   taken, then read again with a plain pread, oldest first, the socket
 *   looked at between two once DEFERRED_REFILL are left; so a burst of
 *   misses is that many disk reads in flight, as with
 *   io_uring, without a round trip through the event loop and its
 *   threadpool. Past DEFERRED_MAX reads or bytes set aside, a miss goes to
 *   the event loop as before.
 * - It never blocks on the socket: sends and receives are non-blocking, and
 *   it waits in poll(2) for the socket and for the event loop's eventfd.
 *
 * Self-contained (node: modules and koffi only), so it runs from the bundle
 * and, unbundled, under Node's own type stripping. Its constants come from
 * the event loop in `workerData` (one source: nbd/constants.ts).
 */

import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { type MessagePort, parentPort, receiveMessageOnPort } from 'node:worker_threads';

/** What relay.ts passes in `workerData`. */
export interface RelayWorkerData {
  socketFd: number;
  wakeFd: number;
  /** The data files, in layout order. */
  dataPaths: string[];
  blockSize: number;
  size: number;
  structured: boolean;
  /** This connection's: [session stopped, socket closed]. */
  control: SharedArrayBuffer;
  /** The export's address map: [epoch] and the entries (read-map.ts). */
  epoch: SharedArrayBuffer;
  entries: SharedArrayBuffer;
  /** [reads answered here, their bytes]. */
  answered: SharedArrayBuffer;
  initial: Uint8Array;
  /** Per receive slot (as many as it has entries): 1 while the event loop holds bytes of it (it sets 0 once parsed). */
  slotStates: SharedArrayBuffer;
  port: MessagePort;
  wire: WireConstants;
}

/** The protocol numbers this thread needs (from nbd/constants.ts and read-map.ts). */
export interface WireConstants {
  requestMagic: number;
  /** A request header, a simple reply, and a one-chunk structured read reply before its data. */
  requestHeaderBytes: number;
  simpleReplyBytes: number;
  dataChunkPrefix: number;
  simpleReplyMagic: number;
  structuredReplyMagic: number;
  cmdRead: number;
  cmdWrite: number;
  cmdDisc: number;
  flagFua: number;
  flagDf: number;
  replyTypeOffsetData: number;
  replyFlagDone: number;
  /** Structured reads at least this long that cover zeros are split into chunks: the event loop does those. */
  sparseReadMin: number;
  /** Longest read answered here. */
  maxRead: number;
  epochIndex: number;
  stoppedIndex: number;
  socketClosedIndex: number;
  /** Set while the thread waits for a receive slot: giving one back wakes it. */
  starvingIndex: number;
  /** Set while the thread waits in poll(2): only then does a message need the eventfd. */
  sleepingIndex: number;
  /** Reply bytes the event loop posted that the thread has not taken; reply bytes it holds unsent; set while the event loop waits for both to be 0. */
  postedIndex: number;
  queuedIndex: number;
  drainWantedIndex: number;
  zeroEntry: number;
}

/** To the event loop: request bytes to parse, blocks to locate, the end of the socket. */
export interface RelayUpMessage {
  /** Request bytes, in order: [start, end) pairs in receive slot `slot`. */
  ranges?: number[];
  slot?: number;
  /** The slot's memory, the first time it goes up. */
  slotMemory?: SharedArrayBuffer;
  /** A copy of the bytes, when no slot was free. */
  bytes?: Uint8Array;
  /** Pairs (first block, count) to locate. */
  fills?: number[];
  /** Requests passed up so far (with `seen`, tells whether the event loop still has one). */
  passed: number;
  /** The client closed, or the socket failed (the message); the thread has ended. */
  closed?: string;
  /** Every reply posted so far was written to the socket (sent once the event loop asked, `drainWantedIndex`). */
  drained?: boolean;
}

/** From the event loop: reply bytes to send, and whether it still has requests of this connection. */
export interface RelayDownMessage {
  out?: Uint8Array;
  /** Requests passed up that the event loop had received when it wrote this. */
  seen: number;
  /** It still has requests of this connection in flight or queued. */
  busy: boolean;
  /** Send what is queued, close the sending side, and end once the client closes (5 s at most). */
  end?: boolean;
  /** Close now. */
  destroy?: boolean;
}

type NativeFn = (...args: unknown[]) => number;
interface Koffi {
  load(path: string): { func(signature: string): NativeFn };
  errno(): number;
  address(buffer: Buffer): bigint;
}

const EAGAIN = 11;
const EINTR = 4;
const POLLIN = 0x1;
const POLLOUT = 0x4;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const RWF_NOWAIT = 0x8;
const FIONREAD = 0x541b;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0x800;
/**
 * A receive slot: shared memory the event loop parses passed-up requests
 * from in place. Slots are reused (no allocation, no page faults, nothing
 * for the garbage collector); the one received into is switched when its
 * bytes went up.
 */
const SLOT_BYTES = 2 * 1024 * 1024;

const END_GRACE_MS = 5000;
const SHUT_WR = 1;
/** Reply bytes the client has not taken at which requests stop being read (as transmission.ts's default maxReplyBytes). */
const QUEUED_HIGH_WATER = 64 * 1024 * 1024;
/**
 * Reads set aside after a page-cache miss, and their bytes, at most: a
 * client's queue depth of reads in flight at the disk at once (QEMU and
 * fio ask up to 32 or 64), and no more reply bytes than the socket queue
 * holds before requests stop being read.
 */
const DEFERRED_MAX = 64;
const DEFERRED_BYTES_MAX = 16 * 1024 * 1024;
/** Set-aside reads left at which the socket is looked at again between two of them. */
const DEFERRED_REFILL = 4;

const koffi = createRequire(import.meta.url)('koffi') as Koffi;
const libc = koffi.load('libc.so.6');
const poll = libc.func('int poll(void *, unsigned long, int)');
const recv = libc.func('intptr_t recv(int, void *, size_t, int)');
const send = libc.func('intptr_t send(int, void *, size_t, int)');
const pread = libc.func('intptr_t pread(int, void *, size_t, int64_t)');
const preadv2 = libc.func('intptr_t preadv2(int, void *, int, int64_t, int)');
const readFd = libc.func('intptr_t read(int, void *, size_t)');
const ioctl = libc.func('int ioctl(int, unsigned long, void *)');
const fcntl = libc.func('int fcntl(int, int, int)');
const shutdown = libc.func('int shutdown(int, int)');
// The socket was not opened through node:fs (which warns when such a descriptor is closed through it).
const closeFd = libc.func('int close(int)');
const errno = () => koffi.errno();

/** Receive slots and the reply buffer, reused by the connections this thread serves one after another. */
const threadSlots: Buffer[] = [];
let threadOut: Buffer | undefined;

/** Serves one connection until it ends (this thread does nothing else meanwhile). */
function serve(data: RelayWorkerData): void {
  const w = data.wire;
  const sock = data.socketFd;
  fcntl(sock, F_SETFL, fcntl(sock, F_GETFL, 0) | O_NONBLOCK);
  const dataFds: number[] = [];
  try {
    for (const file of data.dataPaths) dataFds.push(fs.openSync(file, 'r'));
  } catch (err) {
    for (const fd of dataFds) fs.closeSync(fd);
    throw err;
  }
  // Where physical block p is: file (p − 1) mod n at ⌊(p − 1) / n⌋ blocks (engine/store/data-layout.ts).
  const files = dataFds.length;
  const control = new Int32Array(data.control);
  const epochs = new Int32Array(data.epoch);
  const entries = new Uint32Array(data.entries);
  // Only this thread writes them; the event loop reads them for statistics.
  const answered = new Float64Array(data.answered);
  const port = data.port;
  const bs = data.blockSize;

  const pollFds = Buffer.alloc(16);
  pollFds.writeInt32LE(sock, 0);
  pollFds.writeInt32LE(data.wakeFd, 8);
  pollFds.writeInt16LE(POLLIN, 12);
  const eventBuf = Buffer.alloc(8);
  const countBuf = Buffer.alloc(4);
  // Room for a reply header (simple 16 or structured 28 bytes) and the longest read; kept for the next connection.
  threadOut ??= Buffer.allocUnsafeSlow(Math.max(w.simpleReplyBytes, w.dataChunkPrefix) + w.maxRead);
  const out = threadOut;
  const outAddress = Number(koffi.address(out));
  const iov = Buffer.alloc(16); // the length's high half stays 0

  const slotStates = new Int32Array(data.slotStates);
  const slots: Buffer[] = [];
  /** A slot the event loop holds none of (a new one while fewer than RELAY_SLOTS exist), or -1. */
  const freeSlot = (not: number) => {
    for (let i = 0; i < slots.length; i++) if (i !== not && Atomics.load(slotStates, i) === 0) return i;
    if (slots.length < slotStates.length) {
      // The thread's own, kept for its next connections: their pages are faulted in once.
      threadSlots[slots.length] ??= Buffer.from(new SharedArrayBuffer(SLOT_BYTES));
      slots.push(threadSlots[slots.length]!);
      return slots.length - 1;
    }
    return -1;
  };
  /** Bytes to carry into the next slot while none is free (nothing is received meanwhile). */
  let starved: Buffer | null = null;
  /** Slots whose memory the event loop has (sent with their first use). */
  const shared: boolean[] = [];
  let slot = freeSlot(-1);
  let input = slots[slot]!;
  // What came before the thread took over (normally nothing; at most the event loop's arena, 4 MiB).
  if (data.initial.length > input.length) input = Buffer.allocUnsafeSlow(data.initial.length);
  input.set(data.initial, 0);
  let have = data.initial.length;

  /** Bytes of the current request still to pass up (header and WRITE payload). */
  let passLeft = 0;
  /** A request whose header could not be parsed: everything from here goes up (the event loop drops the connection). */
  let passAll = false;
  let passed = 0;
  let seen = 0;
  let mainBusy = false;
  let closed: string | null = null;
  /** After NBD_CMD_DISC: send what is queued, shut the sending side, wait for the client to close until `endBy`. */
  let ending = false;
  let shutDown = false;
  let endBy = 0;
  const sendQueue: Buffer[] = [];
  let queuedBytes = 0;
  let up: Buffer[] = [];
  let upBytes = 0;
  /** Whether every part of `up` lies in the current receive slot (else they go up as one copy). */
  let upInSlot = true;
  let fills: number[] = [];
  /** Headers (copies) of READs set aside after a page-cache miss, and the bytes they ask. */
  const deferred: Buffer[] = [];
  let deferredBytes = 0;
  /** Set-aside READs that cannot be answered here after all: they go up at the next request boundary. */
  const toPass: Buffer[] = [];
  /** Set by readData: the read stopped only because it would have waited for the disk. */
  let missed = false;
  /** The socket was read once since the set-aside reads were last waited for. */
  let receivedBeforeWait = false;

  /** What the event loop sees of the queue (it stops taking requests while replies wait, transmission.ts). */
  let publishedBytes = 0;
  function published(): void {
    // Written only when it changed: the slot shares its cache line with those the event loop reads per reply.
    if (publishedBytes === queuedBytes) return;
    publishedBytes = queuedBytes;
    Atomics.store(control, w.queuedIndex, queuedBytes);
  }

  /** Tells the event loop, if it waits for it, that every reply it posted was written. */
  function tellDrained(): void {
    if (sendQueue.length > 0 || Atomics.load(control, w.drainWantedIndex) === 0) return;
    if (Atomics.load(control, w.postedIndex) !== 0) return;
    Atomics.store(control, w.drainWantedIndex, 0);
    port.postMessage({ passed, drained: true } satisfies RelayUpMessage);
  }

  /** Sends `b` whole or queues what is left (non-blocking); false if the socket failed. */
  function sendOrQueue(b: Buffer, length = b.length): boolean {
    if (sendQueue.length > 0) {
      // Queued behind bytes not sent yet: our reused reply buffer is copied.
      sendQueue.push(b.buffer === out.buffer ? Buffer.from(b.subarray(0, length)) : b.subarray(0, length));
      queuedBytes += length;
      published();
      return true;
    }
    let at = 0;
    while (at < length) {
      const n = send(sock, at === 0 ? b : b.subarray(at), length - at, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) at += n;
      else if (n < 0 && errno() === EINTR) continue;
      else if (n < 0 && errno() === EAGAIN) {
        // The rest waits for the socket. Our reply buffer is not reused meanwhile: parsing stops while anything waits.
        sendQueue.push(b.subarray(at, length));
        queuedBytes += length - at;
        published();
        return true;
      } else {
        closed = `send: errno ${errno()}`;
        return false;
      }
    }
    return true;
  }

  /** Sends queued bytes until the socket would block. */
  function flushQueue(): void {
    while (sendQueue.length > 0 && closed === null) {
      const b = sendQueue[0]!;
      const n = send(sock, b, b.length, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) queuedBytes -= n;
      if (n === b.length) sendQueue.shift();
      else if (n > 0) sendQueue[0] = b.subarray(n);
      else if (n < 0 && (errno() === EAGAIN || errno() === EINTR)) break;
      else closed = `send: errno ${errno()}`;
    }
    published();
  }

  function passUp(from: number, to: number): void {
    if (to <= from) return;
    up.push(input.subarray(from, to));
    upBytes += to - from;
  }

  /**
   * Sends what goes to the event loop (one message per batch of received
   * bytes): ranges of the slot received into, which is then switched for a
   * free one (`keep`: bytes at its end carried over first). With none free
   * the thread receives nothing until the event loop gives one back
   * (`starved`), unless a request's bytes are not all up (then they go up as
   * a copy). Bytes received before the thread took over go up as a copy.
   */
  function flushUp(keep: number): void {
    if (upBytes === 0 && fills.length === 0) return;
    const message: RelayUpMessage = { passed };
    const transfer: ArrayBuffer[] = [];
    const inSlot = upBytes > 0 && input === slots[slot] && upInSlot;
    const next = inSlot ? freeSlot(slot) : -1;
    // No slot to switch to while a request's bytes are not all up: the event loop cannot parse it (nor give
    // a slot back) before its rest comes, so waiting for a slot would wait forever: these go up as a copy.
    if (inSlot && (next >= 0 || passLeft === 0)) {
      message.slot = slot;
      message.ranges = [];
      for (const part of up) message.ranges.push(part.byteOffset, part.byteOffset + part.length);
      if (!shared[slot]) {
        message.slotMemory = input.buffer as SharedArrayBuffer;
        shared[slot] = true;
      }
      Atomics.store(slotStates, slot, 1);
      if (next >= 0) {
        slots[next]!.set(input.subarray(have - keep, have), 0);
        slot = next;
        input = slots[next]!;
        have = keep;
      } else {
        starved = Buffer.from(input.subarray(have - keep, have));
        have = 0;
        Atomics.store(control, w.starvingIndex, 1);
      }
    } else if (upBytes > 0) {
      const bytes = Buffer.allocUnsafeSlow(upBytes);
      let at = 0;
      for (const part of up) at += part.copy(bytes, at);
      message.bytes = bytes;
      transfer.push(bytes.buffer as ArrayBuffer);
    }
    if (fills.length > 0) message.fills = fills;
    port.postMessage(message, transfer);
    up = [];
    upBytes = 0;
    upInSlot = true;
    fills = [];
  }

  /** Queues the set-aside READs that go up after all, if the bytes gone up so far end with a whole request. */
  function passDeferred(): void {
    if (toPass.length === 0 || passLeft > 0 || passAll) return;
    for (const header of toPass) {
      up.push(header);
      upBytes += header.length;
      passed++;
    }
    toPass.length = 0;
    upInSlot = false;
  }

  /**
   * Answers the oldest set-aside READ, waiting for the disk read its miss
   * started (the others' are in flight meanwhile). One at a time: once few
   * are left, the loop takes the requests the client sent on the replies
   * between two, and their misses start their disk reads too. What cannot
   * be answered here (an address dropped meanwhile, an error) goes up.
   */
  function readDeferred(): void {
    if (deferred.length > 0 && sendQueue.length === 0 && closed === null) {
      const header = deferred.shift()!;
      const length = header.readUInt32BE(24);
      deferredBytes -= length;
      const offset = header.readUInt32BE(16) * 0x100000000 + header.readUInt32BE(20);
      if (!readHere(header, 0, header.readUInt16BE(4), offset, length, () => true)) toPass.push(header);
    }
    passDeferred();
    flushUp(0);
  }

  /** Takes a slot the event loop gave back, if the thread was waiting for one. */
  function unstarve(): void {
    if (starved === null) return;
    const free = freeSlot(-1);
    if (free < 0) return;
    Atomics.store(control, w.starvingIndex, 0);
    slot = free;
    input = slots[free]!;
    input.set(starved, 0);
    have = starved.length;
    starved = null;
  }

  /** Whether this connection has nothing else to do: a read here may then wait for the disk. */
  function alone(next: number): boolean {
    if (have - next > 0 || mainBusy || passed !== seen || sendQueue.length > 0 || deferred.length > 0)
      return false;
    return ioctl(sock, FIONREAD, countBuf) === 0 && countBuf.readInt32LE(0) === 0;
  }

  /**
   * Reads `length` bytes at `position` into `out` at `at`: from the page
   * cache, or (`mayWait()` says this connection has nothing else to do) from
   * the disk; false when it would have to wait and may not, or on an error
   * (the event loop then reads it and answers).
   */
  function readData(
    fd: number,
    at: number,
    length: number,
    position: number,
    mayWait: () => boolean,
  ): boolean {
    let wait = false;
    while (length > 0) {
      let n: number;
      if (wait) n = pread(fd, out.subarray(at), length, position);
      else {
        // The iovec { base, len } written as 32-bit halves: no BigInt per read (user addresses fit 2^53).
        const base = outAddress + at;
        iov.writeUInt32LE(base % 0x1_0000_0000, 0);
        iov.writeUInt32LE(Math.floor(base / 0x1_0000_0000), 4);
        iov.writeUInt32LE(length, 8);
        n = preadv2(fd, iov, 1, position, RWF_NOWAIT);
      }
      if (n > 0) {
        at += n;
        position += n;
        length -= n;
      } else if (n < 0 && errno() === EINTR) continue;
      else if (n < 0 && errno() === EAGAIN && !wait && mayWait()) wait = true;
      else {
        missed = n < 0 && errno() === EAGAIN;
        return false;
      }
    }
    return true;
  }

  /**
   * Answers the READ whose header is at `header[at..]` here if every block's
   * address is known and the bytes come without a disk wait it may not take
   * (`mayWait`, asked at a miss); false: pass it up, or set it aside if
   * `missed` says a miss was all that stopped it.
   */
  function readHere(
    header: Buffer,
    at: number,
    flags: number,
    offset: number,
    length: number,
    mayWait: () => boolean,
  ): boolean {
    missed = false;
    const allowed = w.flagFua | (data.structured ? w.flagDf : 0);
    if (flags & ~allowed || length === 0 || length > w.maxRead || offset + length > data.size) return false;
    if (Atomics.load(control, w.stoppedIndex) !== 0) return false;
    const epoch = Atomics.load(epochs, w.epochIndex);
    const first = Math.floor(offset / bs);
    const last = Math.floor((offset + length - 1) / bs);
    let zeros = false;
    for (let b = first; b <= last; b++) {
      const e = Atomics.load(entries, b);
      if (e === 0) {
        fills.push(first, last - first + 1);
        return false;
      }
      if (e === w.zeroEntry) zeros = true;
    }
    // A long structured read over zeros is answered with hole chunks: the event loop's Transmission does that.
    if (zeros && data.structured && length >= w.sparseReadMin && !(flags & w.flagDf)) return false;
    const prefix = data.structured ? w.dataChunkPrefix : w.simpleReplyBytes;
    // Physically contiguous blocks are read with one call.
    let runStart = -1;
    let runFd = -1;
    let runPosition = 0;
    let runLength = 0;
    for (let pos = offset; pos < offset + length; ) {
      const b = Math.floor(pos / bs);
      const inBlock = pos - b * bs;
      const take = Math.min(bs - inBlock, offset + length - pos);
      const e = Atomics.load(entries, b);
      const dst = prefix + (pos - offset);
      if (e === 0) return false;
      if (e === w.zeroEntry) {
        if (runLength > 0 && !readData(runFd, runStart, runLength, runPosition, mayWait)) return false;
        runLength = 0;
        out.fill(0, dst, dst + take);
      } else {
        const i = e - 2;
        const fd = files === 1 ? dataFds[0]! : dataFds[i % files]!;
        const position = (files === 1 ? i : Math.floor(i / files)) * bs + inBlock;
        if (runLength > 0 && runFd === fd && runPosition + runLength === position) runLength += take;
        else {
          if (runLength > 0 && !readData(runFd, runStart, runLength, runPosition, mayWait)) return false;
          runStart = dst;
          runFd = fd;
          runPosition = position;
          runLength = take;
        }
      }
      pos += take;
    }
    if (runLength > 0 && !readData(runFd, runStart, runLength, runPosition, mayWait)) return false;
    // An address may have been dropped while it was read: then the bytes are not sent.
    if (Atomics.load(epochs, w.epochIndex) !== epoch) return false;
    if (data.structured) {
      out.writeUInt32BE(w.structuredReplyMagic, 0);
      out.writeUInt16BE(w.replyFlagDone, 4);
      out.writeUInt16BE(w.replyTypeOffsetData, 6);
      header.copy(out, 8, at + 8, at + 16);
      out.writeUInt32BE(8 + length, 16);
      out.writeUInt32BE(Math.floor(offset / 0x100000000), 20);
      out.writeUInt32BE(offset >>> 0, 24);
    } else {
      out.writeUInt32BE(w.simpleReplyMagic, 0);
      out.writeUInt32BE(0, 4);
      header.copy(out, 8, at + 8, at + 16);
    }
    answered[0]! += 1;
    answered[1]! += length;
    return sendOrQueue(out, prefix + length);
  }

  /** Parses what was received: reads answered here, everything else passed up in order. */
  function parse(): void {
    let pos = 0;
    while (pos < have && closed === null) {
      if (passAll) {
        passUp(pos, have);
        pos = have;
        break;
      }
      passDeferred();
      if (passLeft > 0) {
        const take = Math.min(passLeft, have - pos);
        passUp(pos, pos + take);
        pos += take;
        passLeft -= take;
        continue;
      }
      if (have - pos < w.requestHeaderBytes) break;
      if (input.readUInt32BE(pos) !== w.requestMagic) {
        passAll = true;
        continue;
      }
      const flags = input.readUInt16BE(pos + 4);
      const type = input.readUInt16BE(pos + 6);
      const offset = input.readUInt32BE(pos + 16) * 0x100000000 + input.readUInt32BE(pos + 20);
      const length = input.readUInt32BE(pos + 24);
      // A reply that cannot be sent now is not made: the client must read what waits first.
      if (type === w.cmdRead && sendQueue.length > 0) break;
      // The reads set aside are answered (or go up) before the disconnect does.
      if (type === w.cmdDisc && deferred.length > 0) break;
      // Asked only when the page cache misses (an ioctl).
      const next = pos + w.requestHeaderBytes;
      if (type === w.cmdRead && readHere(input, pos, flags, offset, length, () => alone(next))) {
        pos = next;
        continue;
      }
      if (
        type === w.cmdRead &&
        missed &&
        deferred.length < DEFERRED_MAX &&
        deferredBytes + length <= DEFERRED_BYTES_MAX
      ) {
        // Its disk read is under way (the miss started it): read it again once the requests behind it are taken.
        deferred.push(Buffer.from(input.subarray(pos, next)));
        deferredBytes += length;
        pos = next;
        continue;
      }
      passed++;
      passLeft = w.requestHeaderBytes + (type === w.cmdWrite ? length : 0);
    }
    // The start of a header that is not all here yet stays: in the next slot if this one went up, else at the front.
    const before = input;
    flushUp(have - pos);
    if (input === before) {
      if (pos < have) input.copyWithin(0, pos, have);
      have -= pos;
    }
  }

  /** Takes the event loop's messages: replies to send, its state, end or destroy; whether there was one. */
  function takeDown(): boolean {
    let took = false;
    for (;;) {
      const m = receiveMessageOnPort(port)?.message as RelayDownMessage | undefined;
      if (m === undefined) return took;
      took = true;
      seen = m.seen;
      mainBusy = m.busy;
      if (m.out !== undefined) {
        const sent =
          closed === null && sendOrQueue(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
        Atomics.sub(control, w.postedIndex, m.out.byteLength);
        if (!sent) return true;
      }
      if (m.destroy) closed = 'closed by the agent';
      else if (m.end && !ending) {
        ending = true;
        endBy = Date.now() + END_GRACE_MS;
      }
    }
  }

  /** Takes what the socket holds (non-blocking) and parses it; whether anything came. */
  function receive(): boolean {
    const n = recv(sock, have === 0 ? input : input.subarray(have), input.length - have, MSG_DONTWAIT);
    if (n > 0) {
      have += n;
      parse();
      return true;
    }
    received(n);
    return false;
  }

  function received(n: number): void {
    if (n === 0) closed = 'client closed';
    else if (errno() !== EAGAIN && errno() !== EINTR) closed = `recv: errno ${errno()}`;
  }

  try {
    if (have > 0) parse();
    while (closed === null) {
      takeDown();
      flushQueue();
      if (closed !== null) break;
      tellDrained();
      // Requests left while replies waited (or while no slot was free): their turn now.
      unstarve();
      if (sendQueue.length === 0 && starved === null && have >= w.requestHeaderBytes) parse();
      unstarve();
      const room = starved === null && have < input.length && queuedBytes < QUEUED_HIGH_WATER;
      if (deferred.length > 0 && sendQueue.length === 0 && closed === null) {
        // Near the end of a burst, the requests the client sent on its replies (once per read set aside:
        // one that keeps sending does not starve them): their misses start their disk reads before the
        // last ones are waited for, many back to back (one device notification for several, not one each).
        if (!receivedBeforeWait && room && deferred.length <= DEFERRED_REFILL && receive())
          receivedBeforeWait = true;
        else {
          receivedBeforeWait = false;
          readDeferred();
        }
        continue;
      }
      if (ending && sendQueue.length === 0) {
        // What was queued went out: close our sending side, then wait (bounded) for the client to close.
        if (!shutDown) shutdown(sock, SHUT_WR);
        shutDown = true;
        if (Date.now() > endBy) break;
      }
      // Requests are not read while the client leaves this many reply bytes unread (it must read them first).
      const events = (room ? POLLIN : 0) | (sendQueue.length > 0 ? POLLOUT : 0);
      pollFds.writeInt16LE(events, 4);
      pollFds.writeInt16LE(0, 6);
      pollFds.writeInt16LE(0, 14);
      // Asleep from here: the event loop wakes the thread (the eventfd) only while this is set. A message
      // posted before it was set is taken now instead.
      Atomics.store(control, w.sleepingIndex, 1);
      if (takeDown()) {
        Atomics.store(control, w.sleepingIndex, 0);
        continue;
      }
      const ready = poll(pollFds, 2, ending ? 250 : -1);
      Atomics.store(control, w.sleepingIndex, 0);
      if (ready < 0 && errno() !== EINTR) {
        closed = `poll: errno ${errno()}`;
        break;
      }
      if (pollFds.readInt16LE(14) !== 0) {
        readFd(data.wakeFd, eventBuf, 8);
        takeDown();
      }
      const happened = pollFds.readInt16LE(6);
      if (happened & POLLOUT) flushQueue();
      // Readable, or hung up / failed (the receive tells which).
      // Never into a slot the event loop holds (a hang-up is noticed once a slot is back).
      if (happened & ~POLLOUT && starved === null && have < input.length) receive();
    }
  } catch (err) {
    closed = `thread failed: ${(err as Error).message}`;
  } finally {
    Atomics.store(control, w.socketClosedIndex, 1);
    for (const fd of dataFds) fs.closeSync(fd);
    closeFd(sock);
    port.postMessage({ passed, closed: closed ?? 'ended' } satisfies RelayUpMessage);
    port.close();
  }
}

/** From the event loop to an idle thread: serve this connection (or the string 'exit': end). */
export interface RelayAssignment {
  serve: RelayWorkerData;
}

// Loaded (koffi and libc found): the event loop may hand connections over. Each is served to its end.
parentPort!.postMessage('ready');
parentPort!.on('message', (m: RelayAssignment | 'exit') => {
  // The server closes: the thread ends once idle (never cut off inside a native call).
  if (m === 'exit') {
    parentPort!.close();
    return;
  }
  try {
    serve(m.serve);
  } catch (err) {
    // Failed before serving (the data file would not open): the connection is closed, the thread stays.
    Atomics.store(new Int32Array(m.serve.control), m.serve.wire.socketClosedIndex, 1);
    closeFd(m.serve.socketFd);
    m.serve.port.postMessage({ passed: 0, closed: `thread failed: ${(err as Error).message}` });
    m.serve.port.close();
  }
});
