/**
 * Hostile-input drill: frames built to be wrong in every way a client can be
 * wrong — wrong types, missing and extra fields, huge numbers and lengths,
 * deep nesting, invalid UTF-8, binary garbage, __proto__/constructor keys,
 * unknown ops, replayed ids — at a real agent. At the NBD port: random bytes
 * at the handshake, and after it commands past the export's end, oversized
 * lengths, unknown command types, writes to read-only exports, a broken
 * request header and a disconnect mid-write. Each must be refused with the
 * right error (or the connection closed where the protocol says so), the
 * agent and the NBD server must stay up, and nothing may change.
 */
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import fc from 'fast-check';
import WebSocket from 'ws';
import { AgentClient } from '../../agent/client/client';
import { Pool } from '../../agent/engine';
import { startNbdServer } from '../../agent/nbd';
import { CMD, MAX_PAYLOAD, NBD_ERR, TFLAG } from '../../agent/nbd/constants';
import { OP_NAMES } from '../../schema';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { tempDir } from '../helpers/tmp';
import { RawClient } from '../nbd/helpers/raw-client';

export interface HostileDrillResult {
  tried: number;
  refused: number;
  /** Frames answered with success (must be 0: each was built to be invalid). */
  accepted: number;
  agentUp: boolean;
  stateUnchanged: boolean;
  /** Random byte streams at the NBD handshake. */
  nbdTried: number;
  /** Hostile inputs after the NBD handshake, and those refused as the protocol says. */
  nbdCommands: number;
  nbdRefused: number;
  /** NBD inputs answered wrongly: what was sent, what came back. */
  nbdWrong: string[];
  /** A later good client writes, flushes and reads back. */
  nbdServerUp: boolean;
  /** The exports and the snapshot read as before, and fsck is clean. */
  nbdUnchanged: boolean;
  /** Frames that got neither an answer nor a close (must be none). */
  unanswered: string[];
}

/** A request for `op` that is invalid by construction (each variant breaks a different rule). */
const invalidRequest = fc
  .tuple(fc.constantFrom(...OP_NAMES), fc.nat(9), fc.jsonValue(), fc.string())
  .map(([op, kind, junk, text]) => {
    const base: Record<string, unknown> = { v: 1, id: `h${text.length}-${kind}`, op, params: {} };
    switch (kind) {
      case 0:
        return { ...base, params: { ...(base.params as object), [`x${text}`]: junk } }; // unknown field
      case 1:
        return { ...base, v: 2 }; // unsupported version
      case 2:
        return {
          ...base,
          params: junk === null || typeof junk !== 'object' || Array.isArray(junk) ? [junk] : 7,
        }; // params not an object
      case 3:
        return { ...base, op: `${op}X${text}` }; // unknown op
      case 4:
        return JSON.parse(
          `{"v":1,"id":"p","op":"${op}","params":{"__proto__":{"polluted":true},"constructor":{"prototype":1}}}`,
        );
      case 5:
        return {
          ...base,
          params: {
            container: 'x',
            offset: 2 ** 60,
            length: Number.MAX_SAFE_INTEGER,
            size: 1e300,
            name: 'x',
          },
        };
      case 6:
        return { ...base, id: typeof junk === 'string' ? [junk] : junk }; // id of the wrong type
      case 7:
        return { ...base, params: { container: text.repeat(50) + '/../..', name: '\u0000' } };
      case 8:
        return { v: 1, op }; // missing id and params
      default:
        return { ...base, idempotencyKey: 42 };
    }
  });

function deepNesting(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

export async function hostileDrill(frames: number, seed = Date.now()): Promise<HostileDrillResult> {
  const agent: AgentProcess = await startAgentProcess();
  const result: HostileDrillResult = {
    tried: 0,
    refused: 0,
    accepted: 0,
    agentUp: false,
    stateUnchanged: false,
    nbdTried: 0,
    nbdCommands: 0,
    nbdRefused: 0,
    nbdWrong: [],
    nbdServerUp: false,
    nbdUnchanged: false,
    unanswered: [],
  };
  try {
    const client = await AgentClient.connect(agent.url, { token: agent.token });
    await client.call('createContainer', { name: 'keep', type: 'vdisk', size: 65536 });
    await client.write('keep', 0, Buffer.from('precious'));
    await client.call('flush', {});
    const before = JSON.stringify([
      await client.call('listContainers', {}),
      await client.call('listSnapshots', {}),
    ]);

    let ws: WebSocket | null = null;
    const replies = new Map<string, { ok: boolean }>();
    let anonymousErrors = 0;
    const open = async () => {
      ws = new WebSocket(agent.url, {
        headers: { authorization: `Bearer ${agent.token}` },
        maxPayload: 64 * 1024 * 1024,
      });
      await new Promise((resolve, reject) => {
        ws!.once('open', resolve);
        ws!.once('error', reject);
      });
      ws.on('message', (d) => {
        const m = JSON.parse(String(d));
        if (m.id === null || typeof m.id !== 'string') anonymousErrors++;
        else replies.set(m.id, m);
      });
      ws.on('error', () => {});
      ws.send(JSON.stringify({ v: 1, id: 'hello', op: 'hello', params: { protocols: [1] } }));
    };
    const sendAndCount = async (
      frame: string | Buffer,
      binary = false,
      knownId?: string | null,
    ): Promise<void> => {
      if (!ws || ws.readyState !== WebSocket.OPEN) await open();
      let onClose: () => void = () => {};
      const closed = new Promise<'closed'>((resolve) => {
        onClose = () => resolve('closed');
        ws!.once('close', onClose);
      });
      const errorsBefore = anonymousErrors;
      const id =
        knownId !== undefined
          ? knownId
          : typeof frame === 'string'
            ? (/"id":"([^"]*)"/.exec(frame)?.[1] ?? null)
            : null;
      if (id) replies.delete(id);
      ws!.send(frame, { binary });
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const answered = new Promise<'answered'>((resolve) => {
        const poll = () => {
          if (settled) return; // stop once the race is decided: a live timer would keep the process up
          if (anonymousErrors > errorsBefore || (id && replies.has(id))) resolve('answered');
          else setTimeout(poll, 2);
        };
        poll();
      });
      const outcome = await Promise.race([
        answered,
        closed,
        new Promise<'timeout'>((r) => {
          timer = setTimeout(() => r('timeout'), 2000);
        }),
      ]);
      settled = true;
      clearTimeout(timer);
      ws?.off('close', onClose);
      result.tried++;
      if (outcome === 'timeout') result.unanswered.push(String(frame).slice(0, 200));
      if (outcome === 'closed') result.refused++;
      else if (outcome === 'answered') {
        if (id && replies.get(id)?.ok) result.accepted++;
        else result.refused++;
      }
    };

    const samples = fc.sample(invalidRequest, { numRuns: frames, seed });
    for (const request of samples) {
      const id = (request as { id?: unknown }).id;
      await sendAndCount(JSON.stringify(request), false, typeof id === 'string' ? id : null);
    }
    // Beyond JSON requests: nesting, garbage, invalid UTF-8, oversized, replayed ids.
    await sendAndCount(deepNesting(5000));
    await sendAndCount(Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xff]), false); // invalid UTF-8 in a text frame: 1007
    for (const garbage of fc.sample(fc.uint8Array({ minLength: 1, maxLength: 512 }), {
      numRuns: Math.max(5, frames / 20),
      seed,
    })) {
      // The agent answers a binary frame under the id its header names (if it names one).
      const frame = Buffer.from(garbage);
      const idLength = frame.length >= 2 ? frame.readUInt16BE(0) : 0;
      const id =
        idLength > 0 && frame.length >= 2 + idLength
          ? frame.subarray(2, 2 + idLength).toString('utf8')
          : null;
      await sendAndCount(frame, true, id);
    }
    await sendAndCount(Buffer.alloc(40 * 1024 * 1024, 0x7b)); // oversized: 1009
    // A write that waits for its data frame keeps its id in flight; the same id again is refused.
    if ((ws as WebSocket | null)?.readyState !== WebSocket.OPEN) await open();
    (ws as WebSocket | null)?.send(
      '{"v":1,"id":"dup","op":"write","params":{"container":"keep","offset":0,"length":8}}',
    );
    await sendAndCount('{"v":1,"id":"dup","op":"info","params":{}}'); // same id while the write waits for its data
    (ws as WebSocket | null)?.terminate();

    result.agentUp = (await client.call('info', {})).blockSize > 0;
    const after = JSON.stringify([
      await client.call('listContainers', {}),
      await client.call('listSnapshots', {}),
    ]);
    result.stateUnchanged =
      after === before &&
      (await client.read('keep', 0, 8)).toString() === 'precious' &&
      (await client.call('fsck', {})).ok;
    await client.close();
    Object.assign(result, await nbdDrill(frames, seed));
  } finally {
    await agent.stop();
  }
  return result;
}

const NBD_SIZE = 1 << 20;
const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const cmdName = (type: number) => Object.entries(CMD).find(([, v]) => v === type)?.[0] ?? `command ${type}`;
const errnoName = (e: number | string) =>
  typeof e === 'string'
    ? e
    : e === 0
      ? 'success'
      : (Object.entries(NBD_ERR).find(([, v]) => v === e)?.[0] ?? `errno ${e}`);

interface HostileCommand {
  type: number;
  offset: number;
  length: number;
  why: string;
}

const inExport = fc.integer({ min: 0, max: NBD_SIZE - 1 });
const ranged = fc.constantFrom(CMD.READ, CMD.WRITE, CMD.TRIM, CMD.WRITE_ZEROES, CMD.BLOCK_STATUS);

/** Commands (flags 0) that no export of NBD_SIZE bytes can serve. */
const hostileCommand: fc.Arbitrary<HostileCommand> = fc.oneof(
  fc.record({
    type: ranged,
    offset: fc.oneof(fc.integer({ min: NBD_SIZE, max: 2 ** 53 }), fc.constant(2 ** 63)),
    length: fc.integer({ min: 1, max: 65536 }),
    why: fc.constant('past the end'),
  }),
  fc.integer({ min: 2, max: 65536 }).chain((length) =>
    fc.record({
      type: ranged,
      offset: fc.integer({ min: Math.max(0, NBD_SIZE - length + 1), max: NBD_SIZE - 1 }),
      length: fc.constant(length),
      why: fc.constant('across the end'),
    }),
  ),
  fc.record({
    type: fc.constant(CMD.READ),
    offset: inExport,
    length: fc.integer({ min: MAX_PAYLOAD + 1, max: 2 ** 32 - 1 }),
    why: fc.constant('oversized'),
  }),
  fc.record({
    type: fc.oneof(fc.constant(CMD.CACHE), fc.integer({ min: 8, max: 0xffff })),
    offset: inExport,
    length: fc.integer({ min: 0, max: 65536 }),
    why: fc.constant('unknown command'),
  }),
);

/** The spec's errors: a write or zeroing past the end is ENOSPC; every other refusal here is EINVAL. */
const expectedErrno = (c: HostileCommand): number =>
  c.why !== 'unknown command' && (c.type === CMD.WRITE || c.type === CMD.WRITE_ZEROES)
    ? NBD_ERR.ENOSPC
    : NBD_ERR.EINVAL;

/** Sends one request; its errno (0: success), or why no reply to it came. */
async function ask(
  c: RawClient,
  type: number,
  offset: number,
  length: number,
  payload?: Buffer,
): Promise<number | string> {
  const handle = c.request(type, 0, offset, length, payload);
  let timer: NodeJS.Timeout | undefined;
  const reply = await Promise.race([
    c.reply(type === CMD.READ ? Math.min(length, MAX_PAYLOAD) : 0).catch(() => 'connection closed'),
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('no reply'), 2000);
    }),
  ]);
  clearTimeout(timer);
  if (typeof reply === 'string') return reply;
  return reply.handle === handle ? reply.error : `a reply to handle ${reply.handle}`;
}

/** Resolves 'closed' once the server drops the connection, 'open' if it has not within 2 s. */
function closedWithin(c: RawClient): Promise<'closed' | 'open'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    c.closed.then(() => 'closed' as const),
    new Promise<'open'>((resolve) => {
      timer = setTimeout(() => resolve('open'), 2000);
    }),
  ]).finally(() => clearTimeout(timer));
}

type NbdDrillResult = Pick<
  HostileDrillResult,
  'nbdTried' | 'nbdCommands' | 'nbdRefused' | 'nbdWrong' | 'nbdServerUp' | 'nbdUnchanged'
>;

async function nbdDrill(frames: number, seed: number): Promise<NbdDrillResult> {
  const out: NbdDrillResult = {
    nbdTried: 0,
    nbdCommands: 0,
    nbdRefused: 0,
    nbdWrong: [],
    nbdServerUp: false,
    nbdUnchanged: false,
  };
  const pool = Pool.create(tempDir(), { blockSize: 4096 });
  const content = Buffer.alloc(NBD_SIZE);
  for (let i = 0; i < NBD_SIZE; i += 4) content.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (const name of ['vd', 'vd2']) {
    pool.createContainer({ name, type: 'vdisk', size: NBD_SIZE });
    pool.write(name, 0, content);
  }
  pool.snapshot('vd', 'snap');
  await pool.flush();
  const state = () =>
    ['vd', 'vd2'].map((n) => hash(pool.read(n, 0, NBD_SIZE))).join() +
    hash(pool.readSnapshot('vd@snap', 0, NBD_SIZE));
  const before = state();
  // Refused clients are expected here; the server's one-line reports of them would only be noise.
  const nbd = await startNbdServer({
    pool,
    host: '127.0.0.1',
    port: 0,
    insecureNoAuth: true, // loopback; the drill is about hostile input, not access
    onError: () => {},
  });
  const port = nbd.port;
  const open: RawClient[] = [];
  const connect = async (name: string, options: { structured?: boolean } = {}) => {
    const opened = await RawClient.open(port, name, options);
    open.push(opened.client);
    return opened;
  };
  /** Counts one hostile input, refused as the protocol says if `got` is `want`. */
  const check = (what: string, got: number | string, want: number | string) => {
    out.nbdCommands++;
    if (got === want) out.nbdRefused++;
    else out.nbdWrong.push(`${what}: expected ${errnoName(want)}, got ${errnoName(got)}`);
    return got === want;
  };
  try {
    // Random bytes at the handshake.
    for (const bytes of fc.sample(fc.uint8Array({ minLength: 1, maxLength: 2048 }), {
      numRuns: Math.max(10, frames / 10),
      seed,
    })) {
      await new Promise<void>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end(Buffer.from(bytes)));
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.resume();
        setTimeout(() => socket.destroy(), 500);
      });
      out.nbdTried++;
    }

    // After the handshake: random impossible commands, alternately with structured and simple replies.
    const conns: Array<{ name: string; structured: boolean; client: RawClient | null }> = [
      { name: 'vd', structured: true, client: null },
      { name: 'vd2', structured: false, client: null },
    ];
    const commands = fc.sample(hostileCommand, { numRuns: Math.max(40, frames / 4), seed });
    for (const [i, c] of commands.entries()) {
      const conn = conns[i % 2]!;
      conn.client ??= (await connect(conn.name, { structured: conn.structured })).client;
      const payload = c.type === CMD.WRITE ? Buffer.alloc(c.length, 0xaa) : undefined;
      const got = await ask(conn.client, c.type, c.offset, c.length, payload);
      const what = `${cmdName(c.type)} offset ${c.offset} length ${c.length} (${c.why}) on ${conn.name}`;
      if (!check(what, got, expectedErrno(c))) {
        conn.client.destroy(); // out of step after a wrong answer: start again
        conn.client = null;
      }
    }
    const writer = conns[0]!.client ?? (await connect('vd')).client;
    // An oversized write: its payload is skipped and the stream stays in step.
    const big = MAX_PAYLOAD + 4096;
    check(
      'WRITE of an oversized length',
      await ask(writer, CMD.WRITE, 0, big, Buffer.alloc(big, 0xbb)),
      NBD_ERR.EINVAL,
    );
    check('READ after the skipped payload', await ask(writer, CMD.READ, 0, 4096), 0);

    // Read-only exports: a snapshot, and a vdisk another client is writing.
    const snap = await connect('vd@snap');
    const second = await connect('vd');
    for (const [name, c] of [
      ['vd@snap', snap],
      ['vd while another client writes it', second],
    ] as const) {
      check(
        `${name} is offered read-only`,
        c.flags & TFLAG.READ_ONLY ? 'read-only' : 'writable',
        'read-only',
      );
      check(
        `WRITE to ${name}`,
        await ask(c.client, CMD.WRITE, 0, 4096, Buffer.alloc(4096, 0xcc)),
        NBD_ERR.EPERM,
      );
      check(`TRIM of ${name}`, await ask(c.client, CMD.TRIM, 0, 4096), NBD_ERR.EPERM);
      check(`WRITE_ZEROES of ${name}`, await ask(c.client, CMD.WRITE_ZEROES, 0, 4096), NBD_ERR.EPERM);
    }
    // A broken request header cannot be resynchronised: the server drops that connection.
    snap.client.send(Buffer.alloc(28, 0x41));
    check('a request with a bad magic', await closedWithin(snap.client), 'closed');

    // A client that vanishes halfway through a write's payload: nothing of it lands, and the export is free again.
    writer.disconnect();
    second.client.disconnect();
    await Promise.all([writer.closed, second.client.closed]);
    const vanishing = await connect('vd');
    const header = Buffer.alloc(28);
    header.writeUInt32BE(0x25609513, 0);
    header.writeUInt16BE(CMD.WRITE, 6);
    header.writeUInt32BE(65536, 24);
    vanishing.client.send(Buffer.concat([header, Buffer.alloc(32768, 0xdd)]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    vanishing.client.destroy();
    await vanishing.client.closed;
    let good = await connect('vd');
    for (let tries = 0; good.flags & TFLAG.READ_ONLY && tries < 20; tries++) {
      good.client.disconnect();
      await new Promise((resolve) => setTimeout(resolve, 50));
      good = await connect('vd');
    }
    check(
      'vd after its writer vanished mid-write',
      good.flags & TFLAG.READ_ONLY ? 'read-only' : 'writable',
      'writable',
    );
    out.nbdUnchanged = state() === before && (await pool.fsck()).ok;

    // A good client still reads, writes and flushes.
    const data = Buffer.alloc(4096, 0x5a);
    const wrote = await ask(good.client, CMD.WRITE, 8192, data.length, data);
    const flushed = await ask(good.client, CMD.FLUSH, 0, 0);
    good.client.request(CMD.READ, 0, 8192, data.length);
    const read = await good.client.reply(data.length);
    out.nbdServerUp =
      wrote === 0 && flushed === 0 && RawClient.readData(read, 8192, data.length).equals(data);
    good.client.disconnect();
    await good.client.closed;
  } finally {
    for (const c of open) c.destroy();
    await nbd.close();
    await pool.close();
  }
  return out;
}
