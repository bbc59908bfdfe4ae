/**
 * Connections that hold a slot without using it: the agent closes a TCP
 * connection that has not upgraded to WebSocket within --handshake-timeout,
 * an authenticated WebSocket client that sends nothing (no request, no pong
 * to the agent's pings) after --idle-timeout, and turns away authenticated
 * connections beyond --max-connections-per-address. NBD closes a client
 * still in the handshake after --nbd-handshake-timeout (a client in
 * transmission may stay idle for hours). Connections that have not
 * authenticated have a budget of their own, in which a new one closes the
 * oldest: a process without credentials holding idle sockets locks no client
 * with credentials out. Real agent process, real sockets, real CLI and nbdinfo.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import WebSocket from 'ws';
import { AgentClient } from '../../agent/client/client';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { selfSignedCertificate } from '../helpers/certs';
import { holdIdle, tcp } from '../helpers/idle-holder';
import { makeNbdCredentials } from '../helpers/nbd-credentials';
import { runCliAsync } from '../helpers/run-cli';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { run } from '../nbd/helpers/served-pool';

/** Bound on waiting for the agent to close something; far above the configured timeouts. */
const WAIT_MS = 20_000;

/** Resolves 'closed' when the peer closes `socket`, 'open' if it is still open after WAIT_MS. */
function closedByPeer(socket: net.Socket | WebSocket, waitMs = WAIT_MS): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('open'), waitMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
  });
}

/** An authenticated WebSocket client; with autoPong false it ignores the agent's pings. */
function wsClient(agent: AgentProcess, autoPong: boolean): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(agent.url, { headers: { authorization: `Bearer ${agent.token}` }, autoPong });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

describe('connection timeouts and limits (serve)', function () {
  this.timeout(120_000);
  after(cleanupTempDirs);

  describe('WebSocket agent', () => {
    killAgentsTestsLeave();
    let agent: AgentProcess;
    before(async () => {
      agent = await startAgentProcess({ args: ['--handshake-timeout', '1', '--idle-timeout', '2'] });
    });
    after(() => agent?.stop());

    it('closes a TCP connection that never sends a request (handshake timeout)', async () => {
      const s = await tcp(agent.port);
      assert.equal(await closedByPeer(s), 'closed', 'an idle TCP connection must be closed');
    });

    it('closes an authenticated client that sends nothing and answers no ping (idle timeout)', async () => {
      const ws = await wsClient(agent, false);
      const code = new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
      assert.equal(await closedByPeer(ws), 'closed', 'a silent WebSocket client must be closed');
      assert.equal(await code, 1001);
    });

    it('keeps an idle client that answers pings', async () => {
      const ws = await wsClient(agent, true);
      // Three idle timeouts without a request: the pongs alone keep it.
      assert.equal(await closedByPeer(ws, 6_000), 'open');
      ws.close();
    });
  });

  it('a wss:// connection, once upgraded, outlives the handshake timeout', async () => {
    const { cert, key } = selfSignedCertificate(tempDir('snapsync-limits-'));
    const agent = await startAgentProcess({
      args: ['--tls-cert', cert, '--tls-key', key, '--handshake-timeout', '1'],
    });
    try {
      const ws = await new Promise<WebSocket>((resolve, reject) => {
        const c = new WebSocket(agent.url, {
          headers: { authorization: `Bearer ${agent.token}` },
          ca: fs.readFileSync(cert),
        });
        c.once('open', () => resolve(c));
        c.once('error', reject);
      });
      assert.equal(await closedByPeer(ws, 3_000), 'open', 'the handshake deadline ends at the upgrade');
      ws.close();
    } finally {
      await agent.stop();
    }
  });

  describe('defaults, no flags', () => {
    killAgentsTestsLeave();
    let agent: AgentProcess;
    before(async () => {
      agent = await startAgentProcess();
    });
    after(() => agent?.stop());

    it('the CLI with the token gets in while a process without it holds more idle connections than --max-connections-per-address', async () => {
      const holder = await holdIdle(agent.port, 80);
      try {
        for (let i = 0; i < 3; i++) {
          const r = await runCliAsync(['ls', '--json'], agent);
          assert.equal(r.status, 0, `ls while 80 idle connections are held: ${r.out}${r.err}`);
        }
        assert.ok(holder.reopened() >= 16, 'the agent closed the oldest idle connections for newer ones');
      } finally {
        holder.stop();
      }
      assert.match(agent.logs(), /"reason":"unauthenticated-evicted"/);
    });
  });

  it('an NBD client with its TLS-PSK key gets in while a process without it holds more idle connections than --nbd-max-connections-per-address', async () => {
    const dir = tempDir('snapsync-limits-');
    const creds = makeNbdCredentials(`${dir}/creds`);
    const pskFile = creds.pskFile('hv1');
    fs.writeFileSync(`${dir}/access`, 'psk:hv1 disk\n');
    const agent = await startAgentProcess({
      args: [
        '--nbd',
        '127.0.0.1:0',
        '--nbd-tls-psk-file',
        creds.serverPskFile,
        '--nbd-access',
        `${dir}/access`,
      ],
    });
    try {
      const client = await AgentClient.connect(agent.url, { token: agent.token });
      await client.call('createContainer', { name: 'disk', type: 'vdisk', size: 1 << 20 });
      await client.close();
      const nbdPort = Number(new URL(agent.nbd!).port);
      const holder = await holdIdle(nbdPort, 150);
      try {
        for (let i = 0; i < 3; i++) {
          const r = await run('nbdinfo', [
            '--size',
            `nbds://hv1@127.0.0.1:${nbdPort}/disk?tls-psk-file=${pskFile}`,
          ]);
          assert.equal(r.code, 0, `nbdinfo while 150 idle connections are held: ${r.stderr}`);
          assert.equal(r.stdout.trim(), String(1 << 20));
        }
        assert.ok(holder.reopened() >= 22, 'the agent closed the oldest idle connections for newer ones');
      } finally {
        holder.stop();
      }
      // The operator sees it in /metrics, not only in the log.
      const metrics = await (
        await fetch(`${agent.url.replace(/^ws/, 'http')}/metrics`, {
          headers: { authorization: `Bearer ${agent.token}` },
        })
      ).text();
      const evicted = /^snapsync_nbd_refusals_total\{reason="unauthenticated-evicted"\} (\d+)$/m.exec(
        metrics,
      );
      assert.ok(evicted && Number(evicted[1]) >= 22, metrics);
    } finally {
      await agent.stop();
    }
  });

  describe('per-address limit', () => {
    let agent: AgentProcess;
    before(async () => {
      agent = await startAgentProcess({
        args: [
          '--max-connections-per-address',
          '3',
          '--nbd',
          '127.0.0.1:0',
          '--nbd-insecure-no-auth',
          '--nbd-max-connections-per-address',
          '2',
          '--nbd-handshake-timeout',
          '1',
        ],
      });
    });
    after(() => agent?.stop());

    it('turns away authenticated WebSocket connections beyond --max-connections-per-address (HTTP 503)', async () => {
      const clients = [await wsClient(agent, true), await wsClient(agent, true), await wsClient(agent, true)];
      const raw = await tcp(agent.port);
      await assert.rejects(wsClient(agent, true), /503/);
      assert.equal(await closedByPeer(raw, 800), 'open', 'an idle connection has a budget of its own');
      raw.destroy();
      for (const ws of clients) ws.close();
    });

    it('closes the oldest unauthenticated connection of an address for a new one', async () => {
      const oldest = await tcp(agent.port);
      const others = [await tcp(agent.port), await tcp(agent.port)];
      const closed = closedByPeer(oldest, 5_000);
      const newest = await tcp(agent.port);
      assert.equal(await closed, 'closed', 'the fourth idle connection closes the first');
      assert.equal(await closedByPeer(newest, 800), 'open');
      for (const s of [...others, newest]) s.destroy();
    });

    it('closes an NBD client still in the handshake after --nbd-handshake-timeout', async () => {
      const port = Number(new URL(agent.nbd!).port);
      const s = await tcp(port);
      assert.equal(await closedByPeer(s), 'closed');
    });

    it('closes the oldest NBD connection still in the handshake of an address for a new one', async () => {
      const port = Number(new URL(agent.nbd!).port);
      const oldest = await tcp(port);
      const second = await tcp(port);
      const closed = closedByPeer(oldest, 800);
      const newest = await tcp(port);
      assert.equal(await closed, 'closed', 'the third NBD connection closes the first');
      for (const s of [second, newest]) s.destroy();
    });
  });
});
