/**
 * Outside report (hostile clients), D3: with its token file (or TLS key) in
 * an allowed directory, `import` read the agent's own secret into a vdisk any
 * client could then read, and `export --overwrite` could replace it. The
 * agent's own files are refused as the pool's are (PATH_NOT_ALLOWED, reason
 * `agent-file`), under any name. The real agent and CLI.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs } from '../helpers/tmp';

describe("the agent's own files, inside an allowed directory", function () {
  this.timeout(60_000);
  killAgentsTestsLeave();
  let agent: AgentProcess;
  let tokenFile: string;
  before(async () => {
    agent = await startAgentProcess(); // its --token-file is in its --allow-dir
    tokenFile = path.join(agent.dir, 'token');
    const r = runCli(['create', 'disk', '--type', 'vdisk', '--size', '1M'], agent);
    assert.equal(r.status, 0, r.err);
  });
  after(async () => {
    await agent?.stop();
    cleanupTempDirs();
  });

  const refusal = (args: string[]) => {
    const r = runCli([...args, '--json'], agent);
    assert.equal(r.status, 1, r.out + r.err);
    return JSON.parse(r.out).error;
  };

  it('import of the token file, or of a hard link to it, is refused and creates nothing', () => {
    const link = path.join(agent.dir, 'innocent.raw');
    fs.linkSync(tokenFile, link);
    for (const [file, name] of [
      [tokenFile, 'stolen'],
      [link, 'stolen-2'],
    ] as const) {
      const error = refusal(['import', file, name, '--create']);
      assert.equal(error.code, 'PATH_NOT_ALLOWED');
      assert.equal(error.details.reason, 'agent-file');
      assert.match(error.message, /one of the agent's own files/);
    }
    const ls = runCli(['ls', '--json'], agent);
    assert.deepEqual(
      JSON.parse(ls.out).map((c: { name: string }) => c.name),
      ['disk'],
    );
  });

  it('export --overwrite over the token file is refused and leaves it as it was', () => {
    const before = fs.readFileSync(tokenFile);
    const error = refusal(['export', 'disk', tokenFile, '--overwrite']);
    assert.equal(error.code, 'PATH_NOT_ALLOWED');
    assert.equal(error.details.reason, 'agent-file');
    assert.ok(fs.readFileSync(tokenFile).equals(before));
    // Another file in the same directory still imports and exports.
    const other = path.join(agent.dir, 'other.raw');
    const exported = runCli(['export', 'disk', other], agent);
    assert.equal(exported.status, 0, exported.err);
    assert.equal(fs.statSync(other).size, 1024 * 1024);
  });
});
