/** `sync --map` input through the real CLI: an entry with more than one "=" is a usage error (exit 2), nothing synced. */
import * as assert from 'node:assert/strict';
import { EXIT } from '../../agent/cli/exit-codes';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs } from '../helpers/tmp';

describe('snapsync-agent sync --map', function () {
  this.timeout(120_000);
  let agent: AgentProcess;
  before(async () => {
    agent = await startAgentProcess();
  });
  after(async () => {
    await agent.stop();
    cleanupTempDirs();
  });

  it('refuses "a=b=c" (which side holds the "=" is a guess) with exit 2, and syncs nothing', () => {
    for (const args of [
      ['create', 'prod-disk0', '--type', 'vdisk', '--size', '1M'],
      ['create', 'staging-disk0', '--type', 'vdisk', '--size', '1M'],
      ['snapshot', 'prod-disk0', 'nightly'],
    ])
      assert.equal(runCli(args, agent).status, 0, args.join(' '));
    const r = runCli(['sync', 'staging-disk0', 'prod-disk0@nightly', '--map', 'a=b=c'], agent);
    assert.equal(r.status, EXIT.USAGE);
    assert.match(r.err, /--map wants SRC=DST .*one "=".*got "a=b=c"/);
    assert.equal(JSON.parse(runCli(['describe', 'staging-disk0', '--json'], agent).out).generation, 0);

    // One SRC given two DSTs, or an empty --preserve entry: usage errors, nothing synced.
    const twice = runCli(
      ['sync', 'staging-disk0', 'prod-disk0@nightly', '--map', 'net=a', '--map', 'net=b'],
      agent,
    );
    assert.equal(twice.status, EXIT.USAGE);
    assert.match(twice.err, /--map gives net twice \(a and b\)/);
    const empty = runCli(['sync', 'staging-disk0', 'prod-disk0@nightly', '--preserve', ''], agent);
    assert.equal(empty.status, EXIT.USAGE);
    assert.match(empty.err, /--preserve .* an entry is empty/);
    assert.equal(JSON.parse(runCli(['describe', 'staging-disk0', '--json'], agent).out).generation, 0);
  });
});
