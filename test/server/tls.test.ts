/**
 * wss:// with the operator's certificate: the client pins a CA or a SHA-256
 * fingerprint; with a wrong pin it refuses before the upgrade request (and so
 * before the token) is sent.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { AgentClient, AgentError } from '../../agent/client/client';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { selfSignedCertificate } from '../helpers/certs';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

describe('agent over TLS', function () {
  this.timeout(60_000);
  let agent: AgentProcess;
  let cert: Buffer;
  let fingerprint: string;

  before(async () => {
    const made = selfSignedCertificate(tempDir('snapsync-tls-'));
    cert = fs.readFileSync(made.cert);
    fingerprint = made.fingerprint;
    agent = await startAgentProcess({ args: ['--tls-cert', made.cert, '--tls-key', made.key] });
  });
  after(async () => {
    await agent?.stop();
    cleanupTempDirs();
  });

  it('serves wss:// to a client that pins the certificate fingerprint', async () => {
    assert.match(agent.url, /^wss:\/\//);
    const client = await AgentClient.connect(agent.url, { token: agent.token, fingerprint });
    assert.equal((await client.call('info', {})).blockSize, 4096);
    await client.close();
  });

  it('serves a client that pins the CA', async () => {
    const client = await AgentClient.connect(agent.url, { token: agent.token, ca: cert });
    assert.equal((await client.call('info', {})).blockSize, 4096);
    await client.close();
  });

  it('a wrong pin is refused before the token is sent; no pin at all fails verification', async () => {
    const connectedBefore = agent.logs().split('"msg":"connected"').length;
    const wrong = `${fingerprint.slice(0, -2)}00`;
    await assert.rejects(
      AgentClient.connect(agent.url, { token: agent.token, fingerprint: wrong }),
      (err: unknown) => err instanceof AgentError && err.code === 'TLS_PIN_MISMATCH',
    );
    await assert.rejects(
      AgentClient.connect(agent.url, { token: agent.token }),
      (err: unknown) => err instanceof AgentError && err.code === 'CONNECTION_FAILED',
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(
      agent.logs().split('"msg":"connected"').length,
      connectedBefore,
      'no connection reached the agent',
    );
    assert.ok(!agent.logs().includes('bad-token'));
  });
});
