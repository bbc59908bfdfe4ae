/**
 * Thin provisioning beyond capacity is allowed but visible: `info` and `usage`
 * show the declared total against the capacity, and a create, clone, import
 * --create or resize that takes it beyond the capacity goes through with an
 * OVERCOMMITTED warning.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs } from '../helpers/tmp';

const GiB = 2 ** 30;

describe('snapsync-agent on an overcommitted pool (thin provisioning)', function () {
  this.timeout(120_000);
  killAgentsTestsLeave();
  after(cleanupTempDirs);

  it('create/resize beyond the capacity warn OVERCOMMITTED and go through; info and usage show the ratio', async () => {
    const agent: AgentProcess = await startAgentProcess(); // a 1 GiB pool
    const cli = (...args: string[]) => {
      const r = runCli(args, agent);
      assert.equal(r.status, 0, r.out + r.err);
      return r.out;
    };

    const within = cli('create', 'a', '--type', 'vdisk', '--size', '600M');
    assert.doesNotMatch(within, /warning/);
    assert.match(cli('info'), /^provisioned 600\.0 MiB of 1\.0 GiB capacity \(0\.59×\)$/m);

    const beyond = cli('create', 'b', '--type', 'vdisk', '--size', '100G');
    assert.match(beyond, /^created vdisk b /);
    assert.match(
      beyond,
      /^warning: \[OVERCOMMITTED\] the pool's containers now declare 100\.6 GiB on 1\.0 GiB of capacity \(100\.59×\): .*OUT_OF_SPACE/m,
    );
    assert.match(cli('resize', 'a', '2G'), /^warning: \[OVERCOMMITTED\] .* declare 102\.0 GiB /m);
    // Shrinking, or staying where it was, says nothing.
    assert.doesNotMatch(cli('resize', 'a', '1G', '--shrink'), /warning/);

    const json = JSON.parse(cli('create', 'c', '--type', 'file', '--size', '1G', '--json'));
    assert.equal(json.name, 'c');
    assert.deepEqual(
      json.warnings.map((w: { code: string; details: unknown }) => [w.code, w.details]),
      [['OVERCOMMITTED', { provisionedBytes: 102 * GiB, capacityBytes: GiB }]],
    );

    assert.match(
      cli('info'),
      /^provisioned 102\.0 GiB of 1\.0 GiB capacity \(102×: OVERCOMMITTED, .*OUT_OF_SPACE/m,
    );
    const info = JSON.parse(cli('info', '--json'));
    assert.equal(info.provisionedBytes, 102 * GiB);
    assert.equal(info.overcommitRatio, 102);
    assert.match(
      cli('usage', 'b'),
      /^pool: provisioned 102\.0 GiB of 1\.0 GiB capacity \(102×: OVERCOMMITTED/m,
    );
    assert.deepEqual(JSON.parse(cli('usage', 'b', '--json')).pool, {
      provisionedBytes: 102 * GiB,
      capacityBytes: GiB,
      overcommitRatio: 102,
    });
    await agent.stop();
  });

  it('a clone or an import --create beyond the capacity warns OVERCOMMITTED too (text and --json)', async () => {
    const agent: AgentProcess = await startAgentProcess(); // a 1 GiB pool
    const cli = (...args: string[]) => {
      const r = runCli(args, agent);
      assert.equal(r.status, 0, r.out + r.err);
      return r.out;
    };
    cli('create', 'golden', '--type', 'vdisk', '--size', '400M');
    cli('snapshot', 'golden', 'v1');
    // 800 MiB declared: within the capacity, no warning.
    assert.doesNotMatch(cli('clone', 'golden@v1', 'dev-1'), /warning/);
    const beyond = cli('clone', 'golden@v1', 'dev-2');
    assert.match(beyond, /^cloned golden@v1 into dev-2 /);
    assert.match(
      beyond,
      /^warning: \[OVERCOMMITTED\] the pool's containers now declare 1\.2 GiB on 1\.0 GiB /m,
    );
    const clone = JSON.parse(cli('clone', 'golden@v1', 'dev-3', '--json'));
    assert.deepEqual(
      clone.warnings.map((w: { code: string; details: unknown }) => [w.code, w.details]),
      [['OVERCOMMITTED', { provisionedBytes: 1600 * 2 ** 20, capacityBytes: GiB }]],
    );

    // A sparse 2 GiB image: nothing to copy, but it declares 2 GiB more.
    const image = path.join(agent.dir, 'big.raw');
    fs.writeFileSync(image, 'boot');
    fs.truncateSync(image, 2 * GiB);
    const imported = cli('import', image, 'big', '--create');
    assert.match(imported, /^imported 2\.0 GiB into big /m);
    assert.match(imported, /^warning: \[OVERCOMMITTED\] .* declare 3\.6 GiB on 1\.0 GiB /m);
    fs.truncateSync(image, GiB);
    const json = JSON.parse(cli('import', image, 'big-2', '--create', '--json'));
    assert.equal(json.container, 'big-2');
    assert.deepEqual(
      json.warnings.map((w: { code: string; details: unknown }) => [w.code, w.details]),
      [['OVERCOMMITTED', { provisionedBytes: 1600 * 2 ** 20 + 3 * GiB, capacityBytes: GiB }]],
    );
    // Importing into an existing container declares nothing new: no warning.
    assert.doesNotMatch(cli('import', image, 'big-2'), /warning/);
    await agent.stop();
  });
});
