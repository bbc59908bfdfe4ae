/**
 * Outside report 2, finding 7: one NBD client that pipelines large READs and
 * never reads the replies made the agent hold every reply (20 GB RSS), and
 * its WebSocket API stopped answering. Each connection is bounded now
 * (--nbd-max-in-flight, --nbd-max-reply-bytes): past the bound the agent
 * stops reading that client's requests until it takes its replies. The real
 * agent process, a raw NBD client, the agent's RSS from /proc.
 */
import * as assert from 'node:assert/strict';
import { AgentClient } from '../../agent/client/client';
import { CMD, STRUCTURED_REPLY_MAGIC } from '../../agent/nbd/constants';
import { DATA_CHUNK_PREFIX } from '../../agent/nbd/replies';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { rssBytes } from '../helpers/process-memory';
import { cleanupTempDirs } from '../helpers/tmp';
import { RawClient } from './helpers/raw-client';

const MiB = 1024 * 1024;
/** The largest READ a client may ask (NBD_INFO_BLOCK_SIZE maximum). */
const READ_BYTES = 32 * MiB;
/** Unbounded, the agent would hold 1.5 GiB of replies for these. */
const FLOOD_READS = 48;
/** What the flood may add to the agent's RSS: the 64 MiB bound, one request, the recycled reply buffers, slack. */
const RSS_GROWTH_MAX = 512 * MiB;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pattern = Buffer.from(Uint8Array.from({ length: MiB }, (_, i) => (i * 7 + 3) & 0xff));

/**
 * Takes the replies off `client`'s socket as they come (not buffering
 * gigabytes in the test): resolves with the first `keep` bytes once `total` arrived.
 */
function drainReplies(client: RawClient, total: number, keep: number): Promise<Buffer> {
  const socket = client.socket;
  socket.removeAllListeners('data');
  const kept: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    socket.on('close', () => reject(new Error(`closed after ${got} of ${total} reply bytes`)));
    socket.on('data', (d: Buffer) => {
      if (got < keep) kept.push(Buffer.from(d.subarray(0, keep - got)));
      got += d.length;
      if (got === total) resolve(Buffer.concat(kept));
      else if (got > total) reject(new Error(`${got} reply bytes, more than ${total}`));
    });
    socket.resume();
  });
}

for (const [where, args] of [
  ['a transmission thread', []],
  ['the event loop (--nbd-threads 0)', ['--nbd-threads', '0']],
] as const)
  describe(`nbd backpressure: a client that does not read its replies, served on ${where} (real agent)`, function () {
    this.timeout(120_000);
    let agent: AgentProcess;
    let api: AgentClient;
    let port: number;

    before(async () => {
      agent = await startAgentProcess({ args: ['--nbd', '127.0.0.1:0', '--nbd-insecure-no-auth', ...args] });
      port = Number(new URL(agent.nbd!).port);
      api = await AgentClient.connect(agent.url, { token: agent.token });
      await api.call('createContainer', { name: 'disk', type: 'vdisk', size: 64 * MiB });
      for (let at = 0; at < 64 * MiB; at += MiB) await api.write('disk', at, pattern);
    });
    after(async () => {
      await api?.close();
      await agent?.stop();
      cleanupTempDirs();
    });

    it('holds its RSS bounded while the API keeps answering; the client then gets every reply; a QD32 client works', async () => {
      const pid = agent.pid();
      const before = rssBytes(pid);
      const { client: flood } = await RawClient.open(port, 'disk');
      // It reads nothing: replies pile up in the kernel, then wherever the agent keeps them.
      flood.socket.pause();
      for (let i = 0; i < FLOOD_READS; i++) flood.request(CMD.READ, 0, 0, READ_BYTES);

      let peak = before;
      let slowestApiMs = 0;
      for (const until = Date.now() + 5000; Date.now() < until; ) {
        peak = Math.max(peak, rssBytes(pid));
        const started = Date.now();
        const listed = await Promise.race([
          api.call('listContainers', {}),
          sleep(10_000).then(() => assert.fail('the API did not answer within 10 s')),
        ]);
        slowestApiMs = Math.max(slowestApiMs, Date.now() - started);
        assert.deepEqual(
          listed.map((c: { name: string }) => c.name),
          ['disk'],
        );
        await sleep(200);
      }
      peak = Math.max(peak, rssBytes(pid));
      assert.ok(
        peak - before < RSS_GROWTH_MAX,
        `agent RSS grew by ${Math.round((peak - before) / MiB)} MiB (from ${Math.round(before / MiB)} MiB) for ${FLOOD_READS} unread 32 MiB replies`,
      );
      // Before the fix a call took seconds at 1.5 GiB and failed at 20 GB; the host running the tests may be busy.
      assert.ok(slowestApiMs < 5000, `listContainers took ${slowestApiMs} ms during the flood`);

      // Once it reads, every request is answered (one data chunk each, the disk's bytes).
      const first = await drainReplies(
        flood,
        FLOOD_READS * (DATA_CHUNK_PREFIX + READ_BYTES),
        DATA_CHUNK_PREFIX + MiB,
      );
      assert.equal(first.readUInt32BE(0), STRUCTURED_REPLY_MAGIC);
      assert.equal(first.readUInt32BE(16), 8 + READ_BYTES, 'one chunk with all the data');
      assert.deepEqual(first.subarray(DATA_CHUNK_PREFIX), pattern);
      flood.disconnect();
      await flood.closed;

      // A normal client at queue depth 32 of 1 MiB reads is not held back.
      const { client: qd32 } = await RawClient.open(port, 'disk');
      const handles = Array.from({ length: 32 }, (_, i) => qd32.request(CMD.READ, 0, i * MiB, MiB));
      for (const [i, handle] of handles.entries()) {
        const reply = await qd32.replyFor(handle);
        assert.equal(reply.error, 0);
        assert.deepEqual(RawClient.readData(reply, i * MiB, MiB), pattern);
      }
      qd32.disconnect();
    });
  });
