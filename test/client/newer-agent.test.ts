/**
 * Agents are upgraded before their clients. A relay in front of the real
 * agent adds, to every reply, properties this client's schemas do not know
 * (as a newer agent's new result fields would be); the real client and the
 * real CLI must read the replies as this agent's, and still refuse a reply
 * whose known fields are wrong.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { AgentClient, AgentError } from '../../agent/client/client';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

/** Adds `futureField` to the object and to every object in it that names an entity (has `name` or `id`). */
function addFutureFields(value: unknown, top = true): unknown {
  if (Array.isArray(value)) return value.map((item) => addFutureFields(item, false));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => [
    k,
    addFutureFields(v, false),
  ]);
  const record = Object.fromEntries(entries) as Record<string, unknown>;
  return top || 'name' in record || 'id' in record
    ? { ...record, futureField: { since: 'agent 9' } }
    : record;
}

type Rewrite = (reply: Record<string, unknown>) => Record<string, unknown>;

/** A WebSocket relay to `target` that rewrites every JSON reply; its ws:// URL. */
async function relay(target: string, rewrite: Rewrite) {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (downstream, request) => {
    const upstream = new WebSocket(target, {
      headers: { authorization: request.headers.authorization ?? '' },
    });
    const queued: Array<[WebSocket.RawData, boolean]> = [];
    upstream.on('open', () => {
      for (const [data, isBinary] of queued.splice(0)) upstream.send(data, { binary: isBinary });
    });
    downstream.on('message', (data, isBinary) => {
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary: isBinary });
      else queued.push([data, isBinary]);
    });
    upstream.on('message', (data, isBinary) => {
      if (isBinary) downstream.send(data, { binary: true });
      else downstream.send(JSON.stringify(rewrite(JSON.parse(String(data)))));
    });
    upstream.on('close', () => downstream.close());
    downstream.on('close', () => upstream.close());
    upstream.on('error', () => downstream.close());
  });
  const { port } = server.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}

const newerAgent: Rewrite = (reply) => {
  const out: Record<string, unknown> = { ...reply, servedBy: 'agent 9' };
  if ('result' in reply) out.result = addFutureFields(reply.result);
  if (reply.error) out.error = { ...(reply.error as object), hint: 'new in agent 9' };
  return out;
};

describe('client: replies of a newer agent (unknown properties)', function () {
  this.timeout(60_000);
  killAgentsTestsLeave();
  let agent: AgentProcess;
  let direct: AgentClient;

  before(async () => {
    agent = await startAgentProcess();
    direct = await AgentClient.connect(agent.url, { token: agent.token });
    await direct.call('createContainer', { name: 'prod', type: 'vdisk', size: 1 << 20 });
    await direct.call('snapshot', { container: 'prod', name: 'nightly' });
  });
  after(async () => {
    direct.close();
    await agent.stop();
    cleanupTempDirs();
  });

  it('the client reads them as this agent’s: same results, same error codes', async () => {
    const newer = await relay(agent.url, newerAgent);
    const client = await AgentClient.connect(newer.url, { token: agent.token });
    try {
      assert.deepEqual(
        await client.call('describe', { container: 'prod' }),
        await direct.call('describe', { container: 'prod' }),
      );
      assert.deepEqual(
        await client.call('listSnapshots', { container: 'prod' }),
        await direct.call('listSnapshots', { container: 'prod' }),
      );
      const created = await client.call('createContainer', { name: 'staging', type: 'vdisk', size: 1 << 20 });
      assert.equal(created.name, 'staging');
      assert.equal('futureField' in created, false);
      const synced = await client.call('sync', { target: 'staging', source: 'prod@nightly' });
      assert.equal(synced.target.name, 'staging');
      await assert.rejects(
        client.call('describe', { container: 'nope' }),
        (err: unknown) => err instanceof AgentError && err.code === 'NOT_FOUND',
      );
    } finally {
      client.close();
      await newer.close();
    }
  });

  it('the CLI reads them too (exit 0, the known JSON)', async () => {
    const newer = await relay(agent.url, newerAgent);
    try {
      // Not spawnSync: the relay runs on this process's event loop.
      const run = (url: string) =>
        new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
          const env = { ...process.env, SNAPSYNC_URL: url, SNAPSYNC_TOKEN: agent.token };
          const child = execFile(
            process.execPath,
            [BIN, 'describe', 'prod', '--json'],
            { env },
            (_e, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }),
          );
        });
      const viaNewer = await run(newer.url);
      assert.equal(viaNewer.status, 0, `stderr: ${viaNewer.stderr} stdout: ${viaNewer.stdout}`);
      assert.deepEqual(JSON.parse(viaNewer.stdout), JSON.parse((await run(agent.url)).stdout));
    } finally {
      await newer.close();
    }
  });

  it('a reply whose known field is wrong is still INVALID_REPLY', async () => {
    const broken = await relay(agent.url, (reply) =>
      reply.id !== '1' && reply.ok === true
        ? { ...reply, result: { ...(reply.result as object), name: 7 } }
        : reply,
    );
    const client = await AgentClient.connect(broken.url, { token: agent.token });
    try {
      await assert.rejects(
        client.call('describe', { container: 'prod' }),
        (err: unknown) =>
          err instanceof AgentError && err.code === 'INVALID_REPLY' && /name/.test(err.message),
      );
    } finally {
      client.close();
      await broken.close();
    }
  });
});
