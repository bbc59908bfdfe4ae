/**
 * What all WebSocket connections hold together is bounded
 * (--max-held-bytes-total, held-bytes-total.ts): one local client that opens
 * many connections and reads none of its replies cost the agent each
 * connection's own bound (--max-held-bytes, 64 MiB) times their number, up
 * to 64 × 96 MiB from one address. Now it costs the total plus at most one
 * request per connection (a connection that holds nothing still gets one,
 * so that others are served). The real agent process, real `ws` clients
 * that stop reading, the agent's RSS from /proc and its /metrics.
 */
import * as assert from 'node:assert/strict';
import { AgentClient } from '../../agent/client/client';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { metricValue } from '../helpers/metrics';
import { rssBytes } from '../helpers/process-memory';
import { cleanupTempDirs } from '../helpers/tmp';
import { frameData, type UnreadClient, unreadClient } from '../helpers/unread-client';

const MiB = 1024 * 1024;
const READ_BYTES = 32 * MiB;
const TOTAL = 96 * MiB;
/** Each alone could hold 64 MiB (--max-held-bytes): 512 MiB in all without the total. */
const CLIENTS = 8;
/** Reads each client pipelines and never takes (within --max-in-flight 64): 4 GiB in all, unbounded. */
const READS_EACH = 16;
/** The documented worst case: the total, then one read for each connection that held nothing. */
const HELD_MAX = TOTAL + CLIENTS * (READ_BYTES + 1024);
/** RSS may grow by that and by freed-but-kept buffers; without the total the agent grew by 550 MiB. */
const RSS_GROWTH_MAX = HELD_MAX + 64 * MiB;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pattern = Buffer.from(Uint8Array.from({ length: MiB }, (_, i) => (i * 7 + 3) & 0xff));

describe('WebSocket backpressure over all connections: --max-held-bytes-total (real agent)', function () {
  this.timeout(300_000);
  killAgentsTestsLeave();
  let agent: AgentProcess;
  let api: AgentClient;

  before(async () => {
    agent = await startAgentProcess({ args: ['--max-held-bytes-total', String(TOTAL)] });
    api = await AgentClient.connect(agent.url, { token: agent.token });
    await api.call('createContainer', { name: 'big', type: 'vdisk', size: 2 * READ_BYTES });
    for (let at = 0; at < 2 * READ_BYTES; at += MiB) await api.write('big', at, pattern);
  });
  after(async () => {
    await api?.close();
    await agent?.stop();
    cleanupTempDirs();
  });

  it(`${CLIENTS} connections that read nothing cost about the total, not ${CLIENTS} × 64 MiB; another client is answered at once; every reply then arrives intact`, async () => {
    const pid = agent.pid();
    const before = rssBytes(pid);
    const clients: UnreadClient[] = [];
    for (let c = 0; c < CLIENTS; c++) {
      const client = await unreadClient(agent.url, agent.token);
      client.pauseReading(true);
      for (let i = 0; i < READS_EACH; i++) client.read(`c${c}r${i}`, 'big', (i % 2) * READ_BYTES, READ_BYTES);
      clients.push(client);
    }
    // Let the agent do all it will for these clients, watching its RSS and what it says it holds.
    let peak = before;
    let heldPeak = 0;
    for (let t = 0; t < 20; t++) {
      await sleep(150);
      peak = Math.max(peak, rssBytes(pid));
      heldPeak = Math.max(heldPeak, await metricValue(agent, 'snapsync_held_bytes'));
    }
    assert.ok(heldPeak >= TOTAL, `the clients were to fill the total, held ${heldPeak}`);
    assert.ok(heldPeak <= HELD_MAX, `all connections held ${Math.round(heldPeak / MiB)} MiB`);
    assert.ok((await metricValue(agent, 'snapsync_connections_paused')) >= 1);

    // A client on a new connection holds nothing: its 32 MiB read runs at once, above the total.
    const started = Date.now();
    const fifth = await AgentClient.connect(agent.url, { token: agent.token });
    const data = await fifth.read('big', READ_BYTES, READ_BYTES);
    assert.ok(Date.now() - started < 5000, `another client waited ${Date.now() - started} ms`);
    assert.ok(data.subarray(0, MiB).equals(pattern));
    await fifth.close();
    peak = Math.max(peak, rssBytes(pid));
    assert.ok(
      peak - before < RSS_GROWTH_MAX,
      `the agent grew by ${Math.round((peak - before) / MiB)} MiB for ${CLIENTS} connections that read nothing`,
    );

    // The clients read again: every reply arrives (releases wake the waiting connections), intact.
    for (const client of clients) client.pauseReading(false);
    const deadline = Date.now() + 180_000;
    while (clients.some((c) => c.replies.length < READS_EACH) && Date.now() < deadline) await sleep(100);
    for (const client of clients) {
      assert.equal(client.replies.length, READS_EACH);
      assert.ok(
        client.replies.every((r) => r.ok && r.result?.length === READ_BYTES),
        JSON.stringify(client.replies.find((r) => !r.ok)),
      );
      assert.equal(client.frameCount(), READS_EACH);
      for (const frame of client.frames) {
        assert.equal(frameData(frame).length, READ_BYTES);
        assert.ok(frameData(frame).subarray(0, MiB).equals(pattern));
      }
      client.ws.close();
    }
    assert.equal(await metricValue(agent, 'snapsync_held_bytes'), 0);
  });

  it('connections dropped without reading give all their bytes back to the total, and none stays paused', async () => {
    const clients: UnreadClient[] = [];
    for (let c = 0; c < 4; c++) {
      const client = await unreadClient(agent.url, agent.token);
      client.pauseReading(true);
      for (let i = 0; i < READS_EACH; i++) client.read(`d${c}r${i}`, 'big', 0, READ_BYTES);
      clients.push(client);
    }
    let held = 0;
    for (let t = 0; t < 100 && held < TOTAL; t++) {
      await sleep(50);
      held = await metricValue(agent, 'snapsync_held_bytes');
    }
    assert.ok(held >= TOTAL, `held ${held}`);
    for (const client of clients) client.ws.terminate();
    for (let t = 0; t < 200 && held > 0; t++) {
      await sleep(50);
      held = await metricValue(agent, 'snapsync_held_bytes');
    }
    assert.equal(held, 0, 'bytes of dropped connections still counted');
    assert.equal(await metricValue(agent, 'snapsync_connections_paused'), 0);
  });
});
