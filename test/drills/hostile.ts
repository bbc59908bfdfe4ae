/**
 * Hostile-input drill: frames built to be wrong in every way a client can be
 * wrong — wrong types, missing and extra fields, huge numbers and lengths,
 * deep nesting, invalid UTF-8, binary garbage, __proto__/constructor keys,
 * unknown ops, replayed ids — at a real agent, and random bytes at the NBD
 * port. Each must be refused with an error (or the connection closed), the
 * agent must stay up, and nothing may change.
 */
import * as net from 'node:net';
import fc from 'fast-check';
import WebSocket from 'ws';
import { AgentClient } from '../../agent/client/client';
import { Pool } from '../../agent/engine';
import { startNbdServer } from '../../agent/nbd';
import { OP_NAMES } from '../../schema';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { tempDir } from '../helpers/tmp';

export interface HostileDrillResult {
  tried: number;
  refused: number;
  /** Frames answered with success (must be 0: each was built to be invalid). */
  accepted: number;
  agentUp: boolean;
  stateUnchanged: boolean;
  nbdTried: number;
  nbdServerUp: boolean;
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
    nbdServerUp: false,
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

    // NBD: random bytes at a listening export.
    const pool = Pool.create(tempDir(), { blockSize: 4096 });
    pool.createContainer({ name: 'vd', type: 'vdisk', size: 1 << 20 });
    const nbd = await startNbdServer({ pool, host: '127.0.0.1', port: 0 });
    const port = nbd.port;
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
      result.nbdTried++;
    }
    result.nbdServerUp = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('data', (d) => {
        resolve(d.subarray(0, 8).toString() === 'NBDMAGIC');
        socket.destroy();
      });
      socket.on('error', () => resolve(false));
    });
    await nbd.close();
    await pool.close();
  } finally {
    await agent.stop();
  }
  return result;
}
