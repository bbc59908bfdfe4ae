/**
 * wss:// with the operator's certificate: the client pins a CA or a SHA-256
 * fingerprint; with a wrong pin it refuses before the upgrade request (and so
 * before the token) is sent.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient, AgentError } from '../../agent/client/client';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

describe('agent over TLS', function () {
  this.timeout(60_000);
  let agent: AgentProcess;
  let cert: Buffer;
  let fingerprint: string;

  before(async () => {
    const dir = tempDir('snapsync-tls-');
    const key = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '2',
        '-keyout',
        key,
        '-out',
        certFile,
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'pipe' },
    );
    cert = fs.readFileSync(certFile);
    fingerprint = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-fingerprint', '-sha256'], {
      encoding: 'utf8',
    })
      .split('=')[1]!
      .trim();
    agent = await startAgentProcess({ args: ['--tls-cert', certFile, '--tls-key', key] });
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
