/**
 * Rotating the bearer token without a restart, as docs/operator-guide.md
 * says: write the new token into the token file, send SIGHUP (systemctl
 * reload). New connections need the new token, a client already connected
 * keeps working, a short token in the file keeps the old one, and the agent
 * never dies of the signal (it used to exit 129 with no log line).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';

const refusedWith = (code: string) => (err: unknown) => (err as { code?: string }).code === code;

async function logged(agent: AgentProcess, pattern: RegExp): Promise<void> {
  for (let waited = 0; waited < 5_000; waited += 50) {
    if (pattern.test(agent.logs())) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`no log line matches ${pattern}:\n${agent.logs()}`);
}

describe('snapsync-agent serve: SIGHUP reloads the token file', function () {
  this.timeout(60_000);
  let agent: AgentProcess | null = null;
  after(async () => {
    await agent?.stop();
    cleanupTempDirs();
  });

  it('the new token is needed from then on, a connected client stays, a short one keeps the old; the agent stays up', async () => {
    agent = await startAgentProcess();
    const tokenFile = path.join(agent.dir, 'token');
    const connected = await AgentClient.connect(agent.url, { token: agent.token });
    const rotated = `rotated-${'x'.repeat(24)}`;
    fs.writeFileSync(tokenFile, rotated, { mode: 0o600 });
    process.kill(agent.pid(), 'SIGHUP');
    await logged(agent, /"msg":"token reloaded"/);
    assert.ok(!agent.logs().includes(rotated), 'the token is never logged');

    await assert.rejects(AgentClient.connect(agent.url, { token: agent.token }), refusedWith('UNAUTHORIZED'));
    const fresh = await AgentClient.connect(agent.url, { token: rotated });
    assert.equal((await fresh.call('info', {})).formatVersion > 0, true);
    await fresh.close();
    assert.equal((await connected.call('listContainers', {})).length, 0, 'the connected client still works');
    await connected.close();

    fs.writeFileSync(tokenFile, 'short', { mode: 0o600 });
    process.kill(agent.pid(), 'SIGHUP');
    await logged(agent, /"msg":"token not reloaded: the agent keeps the token it had"/);
    const still = await AgentClient.connect(agent.url, { token: rotated });
    await still.close();
    assert.equal(await agent.stop(), 0, 'a clean stop after both signals');
    agent = null;
  });
});
