/**
 * Outside report (hostile clients), D1: a WebSocket client that pipelined
 * 32 MiB reads and never read the replies took the agent from 97 MB to
 * 2.2 GB of RSS (4.7 GB with three), which it kept. What a connection holds
 * for its client is bounded now (--max-held-bytes, connection-bytes.ts): past
 * it the agent reads no more of that client's frames, and a read waits for
 * room before it takes its buffer. The real agent process, a WebSocket
 * client that stops reading, the agent's RSS from /proc.
 */
import * as assert from 'node:assert/strict';
import WebSocket from 'ws';
import { AgentClient } from '../../agent/client/client';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { rssBytes } from '../helpers/process-memory';
import { cleanupTempDirs } from '../helpers/tmp';

const MiB = 1024 * 1024;
const READ_BYTES = 32 * MiB;
/** Unbounded, the agent would hold 1.5 GiB of replies for these (within --max-in-flight 64). */
const FLOOD_READS = 48;
/** What the flood may add to the agent's RSS: the 64 MiB bound, one read, freed-but-kept buffers, slack. */
const RSS_GROWTH_MAX = 512 * MiB;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pattern = Buffer.from(Uint8Array.from({ length: MiB }, (_, i) => (i * 5 + 1) & 0xff));

describe('WebSocket backpressure: a client that does not read its replies (real agent)', function () {
  this.timeout(180_000);
  killAgentsTestsLeave();
  let agent: AgentProcess;
  let api: AgentClient;

  before(async () => {
    agent = await startAgentProcess();
    api = await AgentClient.connect(agent.url, { token: agent.token });
    await api.call('createContainer', { name: 'big', type: 'vdisk', size: 64 * MiB });
    for (let at = 0; at < 64 * MiB; at += MiB) await api.write('big', at, pattern);
  });
  after(async () => {
    await api?.close();
    await agent?.stop();
    cleanupTempDirs();
  });

  it('holds its RSS bounded while other clients are answered; the client then gets every reply, intact', async () => {
    const pid = agent.pid();
    const before = rssBytes(pid);
    const ws = new WebSocket(agent.url, { headers: { authorization: `Bearer ${agent.token}` } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const replies: Array<{ id: string; ok: boolean; result?: { length: number } }> = [];
    // The first frames are kept to check; the rest only counted (not 1.5 GiB in the test).
    const frames: Buffer[] = [];
    let frameCount = 0;
    let hello: () => void;
    const helloDone = new Promise<void>((resolve) => {
      hello = resolve;
    });
    ws.on('message', (d, isBinary) => {
      if (isBinary) {
        frameCount++;
        if (frames.length < 3) frames.push(d as Buffer);
      } else {
        const reply = JSON.parse(String(d));
        if (reply.id === 'hello') hello();
        else replies.push(reply);
      }
    });
    ws.send(JSON.stringify({ v: 1, id: 'hello', op: 'hello', params: { protocols: [1] } }));
    await helloDone;
    // From here it reads nothing: replies pile up in the kernel, then wherever the agent keeps them.
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    for (let i = 0; i < FLOOD_READS; i++)
      ws.send(
        JSON.stringify({
          v: 1,
          id: `r${i}`,
          op: 'read',
          params: { container: 'big', offset: (i % 2) * READ_BYTES, length: READ_BYTES },
        }),
      );

    // Let the agent do all it will do for this client, watching its RSS meanwhile.
    let peak = before;
    for (let t = 0; t < 20; t++) {
      await sleep(150);
      peak = Math.max(peak, rssBytes(pid));
    }
    // Another client is answered meanwhile, at once.
    const started = Date.now();
    const other = await api.read('big', 5 * MiB, 4096);
    assert.ok(other.equals(pattern.subarray(0, 4096)));
    assert.ok(Date.now() - started < 5000, `another client waited ${Date.now() - started} ms`);
    peak = Math.max(peak, rssBytes(pid));
    assert.ok(
      peak - before < RSS_GROWTH_MAX,
      `the agent grew by ${Math.round((peak - before) / MiB)} MiB for one client that reads nothing`,
    );

    // The client reads again: every reply arrives, each read's bytes are the disk's.
    (ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const deadline = Date.now() + 120_000;
    while (replies.length < FLOOD_READS && Date.now() < deadline) await sleep(100);
    assert.equal(replies.length, FLOOD_READS);
    assert.ok(
      replies.every((r) => r.ok && r.result?.length === READ_BYTES),
      JSON.stringify(replies.find((r) => !r.ok)),
    );
    assert.equal(frameCount, FLOOD_READS);
    for (const frame of frames) {
      // framing.ts: a 2-byte id length, the id, then the data.
      const data = frame.subarray(2 + frame.readUInt16BE(0));
      assert.equal(data.length, READ_BYTES);
      assert.ok(data.subarray(0, MiB).equals(pattern));
    }
    ws.close();
  });

  it('writes pipelined past the bound (8 × 32 MiB at once) all go through, intact: their data waits in the kernel, not missing', async () => {
    await api.call('createContainer', { name: 'target', type: 'vdisk', size: 8 * READ_BYTES });
    const chunk = (i: number) => Buffer.alloc(READ_BYTES, i + 1);
    await Promise.all(Array.from({ length: 8 }, (_, i) => api.write('target', i * READ_BYTES, chunk(i))));
    for (let i = 0; i < 8; i++) {
      const back = await api.read('target', i * READ_BYTES + READ_BYTES - 4096, 4096);
      assert.ok(back.equals(chunk(i).subarray(0, 4096)), `write ${i}`);
    }
  });

  it('a client the agent owes answers is not closed as idle while it holds its replies (--idle-timeout 1)', async () => {
    const strict = await startAgentProcess({ args: ['--idle-timeout', '1'] });
    try {
      const admin = await AgentClient.connect(strict.url, { token: strict.token });
      await admin.call('createContainer', { name: 'big', type: 'vdisk', size: 2 * READ_BYTES });
      await admin.close();
      const ws = new WebSocket(strict.url, { headers: { authorization: `Bearer ${strict.token}` } });
      await new Promise((resolve) => ws.once('open', resolve));
      let answered = 0;
      let closed = false;
      ws.on('close', () => {
        closed = true;
      });
      const hello = new Promise((resolve) => ws.once('message', resolve));
      ws.send(JSON.stringify({ v: 1, id: 'hello', op: 'hello', params: { protocols: [1] } }));
      await hello;
      ws.on('message', (d, isBinary) => {
        if (!isBinary && JSON.parse(String(d)).ok) answered++;
      });
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      for (let i = 0; i < 8; i++)
        ws.send(
          JSON.stringify({
            v: 1,
            id: `r${i}`,
            op: 'read',
            params: { container: 'big', offset: 0, length: READ_BYTES },
          }),
        );
      await sleep(3000); // three idle timeouts, the agent at its bound with reads still to answer
      (ws as unknown as { _socket: { resume(): void } })._socket.resume();
      for (let t = 0; t < 600 && answered < 8 && !closed; t++) await sleep(100);
      assert.equal(answered, 8, closed ? 'closed as idle while the agent owed it answers' : 'not answered');
      ws.close();
    } finally {
      await strict.stop();
    }
  });
});
