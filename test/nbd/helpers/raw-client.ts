/**
 * A deliberately low-level NBD client for protocol tests: it sends whatever
 * bytes a test asks for, including broken ones, and decodes replies.
 * The server answers requests as they complete, in any order: `reply()`
 * returns them in request order (holding early ones back), `nextReply()` as
 * they arrive, `replyFor(handle)` the one to a given request (several callers
 * may wait at once). Use one of the three per client.
 */
import * as net from 'node:net';
import { ByteQueue } from '../../../agent/nbd/byte-queue';
import {
  CMD,
  IHAVEOPT,
  OPT,
  OPTION_REPLY_MAGIC,
  REQUEST_MAGIC,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
} from '../../../agent/nbd/constants';

export interface OptionReply {
  option: number;
  type: number;
  data: Buffer;
}

export interface Chunk {
  flags: number;
  type: number;
  handle: bigint;
  data: Buffer;
}

export type Reply =
  | { kind: 'simple'; error: number; handle: bigint; data: Buffer }
  | { kind: 'structured'; chunks: Chunk[]; error: number; handle: bigint };

export class RawClient {
  private readonly queue = new ByteQueue();
  readonly closed: Promise<void>;
  private nextHandle = 1n;
  /** Requests sent and not answered yet, oldest first, with a READ's length (to parse simple replies). */
  private readonly outstanding = new Map<bigint, { type: number; length: number }>();
  /** Replies that overtook an older request's. */
  private readonly early = new Map<bigint, Reply>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => this.queue.push(d));
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    socket.on('end', () => this.queue.fail());
    socket.on('close', () => this.queue.fail());
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects and completes the greeting with the given client flags. */
  static async handshake(port: number, clientFlags = 3): Promise<RawClient> {
    const c = await RawClient.connect(port);
    const g = await c.read(18);
    if (g.readBigUInt64BE(0) !== 0x4e42444d41474943n || g.readBigUInt64BE(8) !== IHAVEOPT)
      throw new Error('bad greeting');
    c.u32(clientFlags);
    return c;
  }

  /** Handshake + optional structured replies/meta context + GO. */
  static async open(
    port: number,
    name: string,
    options: { structured?: boolean; meta?: boolean } = {},
  ): Promise<{ client: RawClient; size: number; flags: number }> {
    const c = await RawClient.handshake(port);
    if (options.structured ?? true) {
      c.option(OPT.STRUCTURED_REPLY);
      const r = await c.optionReply();
      if (r.type !== 1) throw new Error(`STRUCTURED_REPLY refused: ${r.type}`);
      if (options.meta ?? true) {
        c.option(OPT.SET_META_CONTEXT, metaRequest(name, ['base:allocation']));
        const ctx = await c.optionReply();
        const ack = await c.optionReply();
        if (ctx.type !== 4 || ack.type !== 1) throw new Error('SET_META_CONTEXT failed');
      }
    }
    const { size, flags, final } = await c.go(name);
    if (final.type !== 1) throw new Error(`GO failed: 0x${final.type.toString(16)} ${final.data}`);
    return { client: c, size: size!, flags: flags! };
  }

  async read(n: number): Promise<Buffer> {
    await this.queue.need(n);
    return Buffer.from(this.queue.take(n));
  }

  send(data: Buffer): void {
    this.socket.write(data);
  }

  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.send(b);
  }

  option(option: number, data: Buffer = Buffer.alloc(0), magic = IHAVEOPT): void {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(magic, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(data.length, 12);
    this.send(Buffer.concat([h, data]));
  }

  async optionReply(): Promise<OptionReply> {
    const h = await this.read(20);
    if (h.readBigUInt64BE(0) !== OPTION_REPLY_MAGIC) throw new Error('bad option reply magic');
    const length = h.readUInt32BE(16);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await this.read(length) };
  }

  /** INFO or GO: returns the INFO replies and the final reply. */
  async go(name: string, requests: number[] = [3], option: number = OPT.GO) {
    this.option(option, infoRequest(name, requests));
    const infos: OptionReply[] = [];
    let size: number | undefined;
    let flags: number | undefined;
    for (;;) {
      const r = await this.optionReply();
      if (r.type !== 3) return { infos, size, flags, final: r };
      infos.push(r);
      if (r.data.readUInt16BE(0) === 0) {
        size = Number(r.data.readBigUInt64BE(2));
        flags = r.data.readUInt16BE(10);
      }
    }
  }

  request(type: number, flags: number, offset: number, length: number, payload?: Buffer): bigint {
    const handle = this.nextHandle++;
    const h = Buffer.alloc(28);
    h.writeUInt32BE(REQUEST_MAGIC, 0);
    h.writeUInt16BE(flags, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(handle, 8);
    h.writeBigUInt64BE(BigInt(offset), 16);
    h.writeUInt32BE(length, 24);
    this.send(payload ? Buffer.concat([h, payload]) : h);
    if (type !== CMD.DISC) this.outstanding.set(handle, { type, length });
    return handle;
  }

  /**
   * `request`, its bytes sent in pieces of `piece` bytes `gapMs` apart, so the
   * server receives them one by one (a slow link, a guest's request split up);
   * resolves once the last piece is handed to the socket.
   */
  async requestInPieces(
    type: number,
    offset: number,
    payload: Buffer,
    piece: number,
    gapMs: number,
  ): Promise<bigint> {
    const handle = this.nextHandle++;
    const h = Buffer.alloc(28);
    h.writeUInt32BE(REQUEST_MAGIC, 0);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(handle, 8);
    h.writeBigUInt64BE(BigInt(offset), 16);
    h.writeUInt32BE(payload.length, 24);
    this.outstanding.set(handle, { type, length: payload.length });
    const bytes = Buffer.concat([h, payload]);
    for (let at = 0; at < bytes.length; at += piece) {
      if (at > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
      this.send(bytes.subarray(at, at + piece));
    }
    return handle;
  }

  /**
   * The reply to the oldest unanswered request (replies to later ones that
   * arrive first are kept for their turn). `readLength`: the data length of a
   * simple read reply to a request not sent with `request`.
   */
  async reply(readLength = 0): Promise<Reply> {
    const oldest = this.outstanding.keys().next();
    if (oldest.done) return this.nextReply(readLength);
    const want = oldest.value;
    for (;;) {
      const got = this.early.get(want) ?? (await this.wireReply(readLength));
      if (got.handle === want) {
        this.early.delete(want);
        this.outstanding.delete(want);
        return got;
      }
      this.early.set(got.handle, got);
    }
  }

  private readonly waiters = new Map<bigint, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private dispatching = false;

  /** The reply to request `handle`, whenever it comes; callers may wait for several requests at once. */
  replyFor(handle: bigint): Promise<Reply> {
    const early = this.early.get(handle);
    if (early) {
      this.early.delete(handle);
      return Promise.resolve(early);
    }
    const reply = new Promise<Reply>((resolve, reject) => this.waiters.set(handle, { resolve, reject }));
    if (!this.dispatching) void this.dispatch();
    return reply;
  }

  private async dispatch(): Promise<void> {
    this.dispatching = true;
    try {
      while (this.waiters.size > 0) {
        const reply = await this.nextReply();
        const waiter = this.waiters.get(reply.handle);
        this.waiters.delete(reply.handle);
        if (waiter) waiter.resolve(reply);
        else this.early.set(reply.handle, reply);
      }
    } catch (err) {
      for (const w of this.waiters.values()) w.reject(err as Error);
      this.waiters.clear();
    } finally {
      this.dispatching = false;
    }
  }

  /** Requests sent and not answered yet. */
  pending(): number {
    return this.outstanding.size;
  }

  /** The next reply off the wire, whichever request it answers. */
  async nextReply(readLength = 0): Promise<Reply> {
    const reply = await this.wireReply(readLength);
    this.outstanding.delete(reply.handle);
    return reply;
  }

  private async wireReply(readLength: number): Promise<Reply> {
    const magic = (await this.read(4)).readUInt32BE(0);
    if (magic === SIMPLE_REPLY_MAGIC) {
      const rest = await this.read(12);
      const error = rest.readUInt32BE(0);
      const handle = rest.readBigUInt64BE(4);
      const sent = this.outstanding.get(handle);
      const length = sent === undefined ? readLength : sent.type === CMD.READ ? sent.length : 0;
      const data = error === 0 && length > 0 ? await this.read(length) : Buffer.alloc(0);
      return { kind: 'simple', error, handle, data };
    }
    if (magic !== STRUCTURED_REPLY_MAGIC) throw new Error(`bad reply magic 0x${magic.toString(16)}`);
    const chunks: Chunk[] = [];
    let error = 0;
    let handle = 0n;
    for (let first = true; ; first = false) {
      const h = first ? await this.read(16) : (await this.read(20)).subarray(4);
      const chunk = {
        flags: h.readUInt16BE(0),
        type: h.readUInt16BE(2),
        handle: h.readBigUInt64BE(4),
        data: await this.read(h.readUInt32BE(12)),
      };
      handle = chunk.handle;
      if (chunk.type & 0x8000) error = chunk.data.readUInt32BE(0);
      chunks.push(chunk);
      if (chunk.flags & 1) return { kind: 'structured', chunks, error, handle };
    }
  }

  /** Reassembles a structured read reply into bytes. */
  static readData(reply: Reply, offset: number, length: number): Buffer {
    if (reply.kind === 'simple') return reply.data;
    const out = Buffer.alloc(length, 0xff);
    for (const c of reply.chunks) {
      const at = Number(c.data.readBigUInt64BE(0)) - offset;
      if (c.type === 1) c.data.copy(out, at, 8);
      else if (c.type === 2) out.fill(0, at, at + c.data.readUInt32BE(8));
    }
    return out;
  }

  disconnect(): void {
    this.request(CMD.DISC, 0, 0, 0);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function infoRequest(name: string, requests: number[]): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2 + 2 * requests.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(requests.length, 4 + n.length);
  requests.forEach((r, i) => {
    b.writeUInt16BE(r, 6 + n.length + 2 * i);
  });
  return b;
}

export function metaRequest(name: string, queries: string[]): Buffer {
  const parts: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return b;
  };
  parts.push(u32(Buffer.byteLength(name)), Buffer.from(name), u32(queries.length));
  for (const q of queries) parts.push(u32(Buffer.byteLength(q)), Buffer.from(q));
  return Buffer.concat(parts);
}
