/**
 * Outside report (hostile clients), D4: a client's bad request magic was
 * logged as `nbd request failed` at level error, the line the guide keeps for
 * I/O errors (a failing device, a damaged pool) that an operator must act on.
 * A client that breaks the protocol is a warning about that client. The real
 * agent, a raw NBD client.
 */
import * as assert from 'node:assert/strict';
import { AgentClient } from '../../agent/client/client';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';
import { RawClient } from './helpers/raw-client';

describe('nbd: a client that breaks the protocol (real agent)', function () {
  this.timeout(60_000);
  killAgentsTestsLeave();
  let agent: AgentProcess;
  after(async () => {
    await agent?.stop();
    cleanupTempDirs();
  });

  it('is dropped and logged as a warning about it, not as a failed request', async () => {
    agent = await startAgentProcess({ args: ['--nbd', '127.0.0.1:0', '--nbd-insecure-no-auth'] });
    const api = await AgentClient.connect(agent.url, { token: agent.token });
    await api.call('createContainer', { name: 'disk', type: 'vdisk', size: 1024 * 1024 });
    await api.close();
    const { client } = await RawClient.open(Number(new URL(agent.nbd!).port), 'disk');
    client.send(Buffer.alloc(28, 0xab)); // a request header whose magic is not NBD's
    await client.closed;
    const lines = () =>
      agent
        .logs()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: string; msg: string; error?: string; dropped?: number });
    for (let wait = 0; wait < 50 && !lines().some((l) => l.msg.startsWith('nbd client broke')); wait++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    const line = lines().find((l) => l.msg === 'nbd client broke the protocol: connection dropped');
    assert.ok(line, agent.logs());
    assert.equal(line.level, 'warn');
    assert.match(line.error!, /^\[PROTOCOL_VIOLATION\] bad request magic 0xabababab/);
    assert.equal(line.dropped, 1);
    assert.ok(!lines().some((l) => l.msg === 'nbd request failed'), agent.logs());
  });
});
