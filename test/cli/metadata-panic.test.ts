/**
 * A write of an LMDB meta page that fails (a disk error under meta/data.mdb)
 * ends LMDB's environment: every commit after it is refused (MDB_PANIC). A
 * client sees CORRUPT with what to do (restart, fsck), not a bare
 * "metadata commit failed: 22"; after a restart the pool has its last
 * committed state and fsck finds it clean. The failing disk is a shim
 * preloaded into the agent (helpers/meta-write-fault.c); LMDB is the real one.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { buildMetaWriteFault } from '../helpers/meta-write-fault';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs } from '../helpers/tmp';

const create = (name: string, agent: AgentProcess) =>
  runCli(['create', name, '--type', 'vdisk', '--size', '1M', '--json'], agent);

describe('a failed write of a metadata meta page (MDB_PANIC)', function () {
  this.timeout(120_000);
  killAgentsTestsLeave();
  after(cleanupTempDirs);

  it('answers CORRUPT with the recovery, for the failed commit and every one after it; a restart has the last commit, fsck clean', async () => {
    const fault = buildMetaWriteFault();
    const agent = await startAgentProcess({ env: fault.env });
    assert.equal(create('before', agent).status, 0);
    const health = async () => {
      const res = await fetch(`http://127.0.0.1:${agent.port}/healthz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    assert.deepEqual((await health()).body.status, 'ok');

    fs.writeFileSync(fault.trigger, '');
    const failed = create('during', agent);
    fs.rmSync(fault.trigger);
    const after = create('after', agent);
    for (const r of [failed, after]) {
      assert.equal(r.status, 1, r.out + r.err);
      const { error } = JSON.parse(r.out);
      assert.equal(error.code, 'CORRUPT');
      assert.equal(error.details.lmdb, 'MDB_PANIC');
      assert.equal(error.details.path, path.join(agent.poolDir, 'meta', 'data.mdb'));
      assert.match(error.message, /data\.mdb cannot be used until the agent restarts \(LMDB: .*MDB_PANIC/);
      assert.match(error.message, /restart the agent .* and run fsck/);
    }
    // A monitor sees it too: the pool still reads, but nothing it is given can be made durable.
    const degraded = await health();
    assert.equal(degraded.status, 503);
    assert.equal(degraded.body.status, 'degraded');
    assert.equal((degraded.body.error as { code: string }).code, 'CORRUPT');
    // No auth on /healthz: the stable code, not the message (it names paths).
    assert.deepEqual(Object.keys(degraded.body.error as object), ['code']);
    assert.ok(Date.parse(String(degraded.body.since)) <= Date.now());
    await agent.stop(); // its log is complete once it exited
    assert.match(agent.logs(), /pool metadata damaged/);

    assert.equal(runCli(['fsck', '--pool', agent.poolDir]).status, 0);
    const again = await startAgentProcess({ poolDir: agent.poolDir });
    const names = JSON.parse(runCli(['ls', '--json'], again).out).map((c: { name: string }) => c.name);
    assert.deepEqual(names, ['before']);
    assert.equal(create('after', again).status, 0);
    await again.stop();
  });
});
