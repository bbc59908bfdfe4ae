/**
 * Connections that hold a slot without using it: the agent closes a TCP
 * connection that has not upgraded to WebSocket within --handshake-timeout,
 * an authenticated WebSocket client that sends nothing (no request, no pong
 * to the agent's pings) after --idle-timeout, and turns away connections
 * beyond --max-connections-per-address. NBD closes a client still in the
 * handshake after --nbd-handshake-timeout (a client in transmission may stay
 * idle for hours) and turns away connections beyond
 * --nbd-max-connections-per-address. Real agent process, real sockets.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import WebSocket from 'ws';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { selfSignedCertificate } from '../helpers/certs';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

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

function tcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // Flowing, so that the peer's close is seen even after it sent a greeting nobody reads.
    const s = net.connect(port, '127.0.0.1', () => resolve(s.resume()));
    s.once('error', reject);
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
    let agent: AgentProcess;
    before(async () => {
      agent = await startAgentProcess({ args: ['--nbd', '127.0.0.1:0', '--nbd-insecure-no-auth'] });
    });
    after(() => agent?.stop());

    it('turns away the 65th connection from one address on --listen, the 129th on --nbd', async () => {
      const held: net.Socket[] = [];
      try {
        for (let i = 0; i < 64; i++) held.push(await tcp(agent.port));
        // Well inside the default 10 s handshake timeout: only the limit can close it.
        assert.equal(await closedByPeer(await tcp(agent.port), 5_000), 'closed');
        const nbdPort = Number(new URL(agent.nbd!).port);
        for (let i = 0; i < 128; i++) held.push(await tcp(nbdPort));
        assert.equal(await closedByPeer(await tcp(nbdPort), 5_000), 'closed');
      } finally {
        for (const s of held) s.destroy();
      }
    });
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

    it('turns away WebSocket-port connections beyond --max-connections-per-address', async () => {
      const clients = [await wsClient(agent, true), await wsClient(agent, true)];
      const raw = await tcp(agent.port);
      const extra = await tcp(agent.port);
      assert.equal(await closedByPeer(extra), 'closed', 'the fourth connection from one address is refused');
      await assert.rejects(wsClient(agent, true));
      raw.destroy();
      for (const ws of clients) ws.close();
    });

    it('closes an NBD client still in the handshake after --nbd-handshake-timeout', async () => {
      const port = Number(new URL(agent.nbd!).port);
      const s = await tcp(port);
      assert.equal(await closedByPeer(s), 'closed');
    });

    it('turns away NBD connections beyond --nbd-max-connections-per-address', async () => {
      const port = Number(new URL(agent.nbd!).port);
      const held = [await tcp(port), await tcp(port)];
      const extra = await tcp(port);
      const greeting = new Promise<number>((resolve) => {
        let bytes = 0;
        extra.pause();
        extra.on('data', (d) => {
          bytes += d.length;
        });
        extra.once('close', () => resolve(bytes));
      });
      assert.equal(await closedByPeer(extra, 800), 'closed', 'the third NBD connection is refused at once');
      assert.equal(await greeting, 0, 'no NBD greeting for a refused connection');
      for (const s of held) s.destroy();
    });
  });
});
