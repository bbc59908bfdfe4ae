/**
 * References through the real agent and CLI: `sync` refuses a sync that would
 * leave a reference to production it cannot map (exit code 1, the error code
 * on stderr and in --json), changes nothing, and goes through with
 * `--map SRC=DST`; the human report lists each reference kept and mapped
 * with what production had.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT } from '../../agent/cli/exit-codes';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');
const fixture = (name: string) =>
  fs.readFileSync(path.join(__dirname, '../fixtures/identity/references', name), 'utf8');

describe('snapsync-agent sync: references', function () {
  this.timeout(120_000);
  let agent: AgentProcess;
  let dir: string;
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      env: { ...process.env, SNAPSYNC_URL: agent.url, SNAPSYNC_TOKEN: agent.token },
      encoding: 'utf8',
    });
    return { status: r.status, out: r.stdout, err: r.stderr };
  };
  const ok = (args: string[]) => {
    const r = cli(args);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.out}${r.err}`);
    return r;
  };

  before(async () => {
    agent = await startAgentProcess();
    dir = tempDir('snapsync-cli-refs-');
  });
  after(async () => {
    await agent.stop();
    cleanupTempDirs();
  });

  it('refuses an unmappable reference with IDENTITY_REFERENCE_UNMAPPED (exit 1), changes nothing, and maps it with --map', () => {
    const prod = fixture('prod-app.vmx').replace(
      'serial0.present',
      'ethernet2.virtualDev = "vmxnet3"\nethernet2.networkName = "prod-dmz"\nethernet2.present = "TRUE"\nserial0.present',
    );
    for (const [vm, text] of [
      ['prod-app', prod],
      ['staging-app', fixture('staging-app.vmx')],
    ] as const) {
      fs.writeFileSync(path.join(dir, `${vm}.vmx`), text);
      ok(['create', `${vm}-config`, '--type', 'file']);
      ok(['write', `${vm}-config`, '0', '--file', path.join(dir, `${vm}.vmx`)]);
      ok(['create', vm, '--type', 'vm', '--member', `config=${vm}-config`]);
    }
    ok(['snapshot', 'prod-app', 'nightly']);

    const refused = cli(['sync', 'staging-app', 'prod-app@nightly']);
    assert.equal(refused.status, EXIT.OPERATION_FAILED);
    assert.match(
      refused.err,
      /^error: \[IDENTITY_REFERENCE_UNMAPPED\] .*config\.ethernet2\.networkName = prod-dmz/,
    );
    const json = cli(['sync', 'staging-app', 'prod-app@nightly', '--json']);
    assert.equal(json.status, EXIT.OPERATION_FAILED);
    const error = JSON.parse(json.out).error;
    assert.equal(error.code, 'IDENTITY_REFERENCE_UNMAPPED');
    assert.deepEqual(error.details.references, [
      { path: 'config.ethernet2.networkName', sourceValue: 'prod-dmz', unmapped: ['prod-dmz'] },
    ]);
    const describe = JSON.parse(ok(['describe', 'staging-app', '--json']).out);
    assert.equal(describe.generation, 0, 'nothing changed');
    assert.deepEqual(JSON.parse(ok(['snapshots', 'staging-app', '--json']).out), [], 'no safety snapshot');

    assert.equal(
      cli(['sync', 'staging-app', 'prod-app@nightly', '--map', 'no-equals-sign']).status,
      EXIT.USAGE,
    );

    const synced = ok(['sync', 'staging-app', 'prod-app@nightly', '--map', 'prod-dmz=staging-dmz']);
    assert.match(synced.out, /REFERENCE +NOW +STATUS +SOURCE HAD/);
    assert.match(
      synced.out,
      /config\.scsi0:0\.fileName +\/vmfs\/volumes\/ds-stage\/staging-app-01\/staging-app-01\.vmdk +kept +\/vmfs\/volumes\/ds-prod\/prod-app-01\/prod-app-01\.vmdk/,
    );
    assert.match(
      synced.out,
      /config\.ethernet2\.networkName +staging-dmz +mapped \(referenceMap: prod-dmz → staging-dmz\) +prod-dmz/,
    );
    const size = JSON.parse(ok(['describe', 'staging-app-config', '--json']).out).size;
    const text = Buffer.from(
      JSON.parse(ok(['read', 'staging-app-config', '0', String(size), '--json']).out).base64,
      'base64',
    ).toString();
    assert.match(text, /^ethernet2\.networkName = "staging-dmz"$/m);
    assert.match(text, /^ethernet0\.networkName = "staging-frontend"$/m);
    assert.ok(!text.includes('prod-'), 'no production reference left');

    // --json carries the references too.
    ok(['snapshot', 'prod-app', 'nightly2']);
    const again = JSON.parse(
      ok(['sync', 'staging-app', 'prod-app@nightly2', '--map', 'prod-dmz=staging-dmz', '--json']).out,
    );
    assert.ok(
      again.identity.references.some(
        (r: { path: string; status: string; sourceValue: string }) =>
          r.path === 'config.ethernet0.networkName' &&
          r.status === 'kept' &&
          r.sourceValue === 'prod-frontend',
      ),
    );
  });

  it("refuses a VM sync that would leave staging's launch file (role launch) naming production's disk, VM and tap (IDENTITY_SOURCE_REFERENCE, exit 1), changes nothing; --allow-source-reference lets it through with a warning", () => {
    const script = (vm: string) =>
      `#!/bin/sh\nexec qemu-system-x86_64 -name ${vm} -m 2048 \\\n  -drive file=nbd+unix:///${vm}-disk0?socket=/run/snapsync/nbd.sock,format=raw,if=virtio \\\n  -netdev tap,id=n0,ifname=tap-${vm}\n`;
    for (const vm of ['prod-web', 'staging-web']) {
      ok(['create', `${vm}-disk0`, '--type', 'vdisk', '--size', '1M']);
      fs.writeFileSync(path.join(dir, `${vm}-launch.sh`), script(vm));
      ok(['create', `${vm}-launch`, '--type', 'file']);
      ok(['write', `${vm}-launch`, '0', '--file', path.join(dir, `${vm}-launch.sh`)]);
      ok(['create', vm, '--type', 'vm', '--member', `disk0=${vm}-disk0`, '--member', `launch=${vm}-launch`]);
    }
    ok(['snapshot', 'prod-web', 'nightly']);
    const launch = () => {
      const size = JSON.parse(ok(['describe', 'staging-web-launch', '--json']).out).size;
      const read = JSON.parse(ok(['read', 'staging-web-launch', '0', String(size), '--json']).out);
      return Buffer.from(read.base64, 'base64').toString();
    };

    const refused = cli(['sync', 'staging-web', 'prod-web@nightly']);
    assert.equal(refused.status, EXIT.OPERATION_FAILED);
    assert.match(
      refused.err,
      /^error: \[IDENTITY_SOURCE_REFERENCE\] .*launch line 3: "prod-web-disk0"; launch line 4: "prod-web"/,
    );
    assert.equal(launch(), script('staging-web'), "staging's launch file is its own");
    assert.equal(JSON.parse(ok(['describe', 'staging-web', '--json']).out).generation, 0, 'nothing changed');

    const allowed = ok([
      'sync',
      'staging-web',
      'prod-web@nightly',
      '--allow-source-reference',
      'prod-web',
      '--allow-source-reference',
      'prod-web-disk0',
    ]);
    assert.match(allowed.out, /warning: launch: \[IDENTITY_SOURCE_REFERENCE\] still names the source/);
    assert.equal(launch(), script('prod-web'));
  });
});
