/**
 * Outside report (hostile clients), D2: the token percent-encoded in the URL
 * path of a refused request was written to the log, where scrubbing the
 * literal token does not find it. A refused request's path is logged only
 * when it is one the agent serves; any other by its length.
 */
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';

const percentEncoded = (text: string) =>
  [...Buffer.from(text)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

/** A WebSocket upgrade to `path` with no credentials; resolves with the HTTP status. */
function upgrade(agent: AgentProcess, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({
      host: '127.0.0.1',
      port: agent.port,
      path,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('upgrade', () => reject(new Error('upgraded without a token')));
    req.on('error', reject);
  });
}

describe('a refused request’s log line', function () {
  this.timeout(60_000);
  killAgentsTestsLeave();
  let agent: AgentProcess;
  before(async () => {
    agent = await startAgentProcess();
  });
  after(async () => {
    await agent?.stop();
    cleanupTempDirs();
  });

  it('never holds the token, however the client encoded it in the path', async () => {
    const encoded = percentEncoded(agent.token);
    for (const path of [`/${encoded}`, `/${agent.token}`, `/x/${encodeURIComponent(encoded)}`, '/'])
      assert.equal(await upgrade(agent, path), 401, path);
    const refused = agent
      .logs()
      .split('\n')
      .filter((l) => l.includes('request refused'))
      .map((l) => JSON.parse(l));
    assert.equal(refused.length, 4, agent.logs());
    assert.deepEqual(
      refused.map((r) => r.path),
      [
        `(not served here, ${1 + encoded.length} characters)`,
        `(not served here, ${1 + agent.token.length} characters)`,
        `(not served here, ${3 + encodeURIComponent(encoded).length} characters)`,
        '/',
      ],
    );
    const logs = agent.logs().toLowerCase();
    for (const secret of [agent.token, encoded, encodeURIComponent(encoded)])
      assert.ok(!logs.includes(secret.toLowerCase()), `the log holds ${secret}`);
  });
});
