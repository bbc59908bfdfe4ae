/** The operator CLI as a user runs it: a real agent, the real binary, --json output and exit codes. */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

describe('snapsync-agent CLI', function () {
  this.timeout(120_000);
  let agent: AgentProcess;
  const cli = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      env: { ...process.env, SNAPSYNC_URL: agent.url, SNAPSYNC_TOKEN: agent.token, ...env },
      encoding: 'utf8',
    });
    return { status: r.status, out: r.stdout, err: r.stderr, json: () => JSON.parse(r.stdout) };
  };

  before(async () => {
    agent = await startAgentProcess();
  });
  after(async () => {
    await agent.stop();
    cleanupTempDirs();
  });

  it('creates, writes, snapshots, syncs and reads back, with --json on every step', () => {
    assert.equal(
      cli(['create', 'web-disk0', '--type', 'vdisk', '--size', '1M', '--json']).json().size,
      1 << 20,
    );
    assert.equal(cli(['write', 'web-disk0', '512', '--text', 'from the CLI', '--json']).json().length, 12);
    assert.equal(cli(['snapshot', 'web-disk0', 'nightly', '--json']).json().name, 'nightly');
    cli(['create', 'stage-disk0', '--type', 'vdisk', '--size', '4K']);
    const sync = cli(['sync', 'stage-disk0', 'web-disk0@nightly', '--json']).json();
    assert.equal(sync.generation, 1);
    const read = cli(['read', 'stage-disk0', '512', '12', '--json']).json();
    assert.equal(Buffer.from(read.base64, 'base64').toString(), 'from the CLI');
    assert.match(cli(['tree', 'stage-disk0']).out, /\* stage-disk0 \(current.*\n\|\n\* web-disk0@nightly/);
    assert.deepEqual(
      cli(['ls', '--json'])
        .json()
        .map((c: { name: string }) => c.name),
      ['web-disk0', 'stage-disk0'],
    );
    assert.equal(cli(['fsck', '--json']).json().ok, true);
    assert.match(
      cli(['sync', 'stage-disk0', 'web-disk0@nightly']).out,
      /undo: snapsync-agent revert stage-disk0 safety-g2/,
    );
  });

  it('exits 1 on an operation error, 2 on bad usage, 3 when it cannot authenticate', () => {
    const missing = cli(['describe', 'nope', '--json']);
    assert.equal(missing.status, 1);
    assert.equal(missing.json().error.code, 'NOT_FOUND');
    assert.equal(cli(['frobnicate']).status, 2);
    const denied = cli(['ls'], { SNAPSYNC_TOKEN: 'wrong' });
    assert.equal(denied.status, 3);
    assert.match(denied.err, /UNAUTHORIZED/);
  });

  it('has --help with examples', () => {
    const help = cli(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.out, /Examples:/);
    assert.match(help.out, /Exit codes: 0 ok, 1 operation failed, 2 usage, 3 connection\/auth, 4 fsck/);
  });
});
