/**
 * References through the real agent and CLI: `sync` refuses a sync that would
 * leave a reference to production it cannot map (exit code 1, the error code
 * on stderr and in --json), changes nothing, and goes through with
 * `--map SRC=DST`; the human report lists each reference kept and mapped
 * with what production had. A config held by a vdisk is refused, and a small
 * vdisk (a cloud-init seed image) is searched by the safety net.
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
      // A 1 MiB container read as base64 JSON is more than spawnSync's default 1 MiB.
      maxBuffer: 64 * 1024 * 1024,
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

  /** A libvirt domain with one NIC: its name, UUID, MAC, network and disk file are the VM's own. */
  const domain = (vm: string, uuid: string, mac: string) =>
    `<domain type='kvm'>\n  <name>${vm}</name>\n  <uuid>${uuid}</uuid>\n  <memory unit='KiB'>1048576</memory>\n  <os><type arch='x86_64'>hvm</type></os>\n  <devices>\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='/var/lib/libvirt/images/${vm}-disk0.qcow2'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n    <interface type='network'>\n      <mac address='${mac}'/>\n      <source network='${vm}-net'/>\n      <model type='virtio'/>\n    </interface>\n  </devices>\n</domain>\n`;
  const PROD = { uuid: '0d4c4a2e-1111-4222-8333-444455556666', mac: '52:54:00:0a:00:01' };
  const STAGE = { uuid: '9e8d7c6b-aaaa-4bbb-8ccc-ddddeeeeffff', mac: '52:54:00:0b:00:01' };
  const writeAt = (container: string, offset: number, data: string | Buffer) => {
    const file = path.join(dir, `${container}-${offset}.bin`);
    fs.writeFileSync(file, data);
    ok(['write', container, String(offset), '--file', file]);
  };
  const readAll = (container: string) => {
    const size = JSON.parse(ok(['describe', container, '--json']).out).size;
    return Buffer.from(JSON.parse(ok(['read', container, '0', String(size), '--json']).out).base64, 'base64');
  };

  it("refuses a VM whose config member is a vdisk (production's libvirt XML) with IDENTITY_REFERENCE_UNMAPPED (exit 1), changes nothing; the other members sync", () => {
    for (const [vm, id] of [
      ['prod-api', PROD],
      ['stage-api', STAGE],
    ] as const) {
      ok(['create', `${vm}-disk0`, '--type', 'vdisk', '--size', '1M']);
      ok(['create', `${vm}-cfgdisk`, '--type', 'vdisk', '--size', '1M']);
      writeAt(`${vm}-cfgdisk`, 0, domain(vm, id.uuid, id.mac));
      ok(['create', vm, '--type', 'vm', '--member', `disk0=${vm}-disk0`, '--member', `config=${vm}-cfgdisk`]);
    }
    writeAt('prod-api-disk0', 0, 'production data');
    ok(['snapshot', 'prod-api', 'nightly']);
    const before = readAll('stage-api-cfgdisk');

    const refused = cli(['sync', 'stage-api', 'prod-api@nightly']);
    assert.equal(refused.status, EXIT.OPERATION_FAILED);
    assert.match(
      refused.err,
      /^error: \[IDENTITY_REFERENCE_UNMAPPED\] sync of "stage-api" refused: the synced config cannot be read \(it is a vdisk, and a config is read only from a file member: put each VM's config in a file container/,
    );
    const error = JSON.parse(cli(['sync', 'stage-api', 'prod-api@nightly', '--json']).out).error;
    assert.equal(error.code, 'IDENTITY_REFERENCE_UNMAPPED');
    assert.deepEqual(
      error.details.unreadable.map((u: { member: string }) => u.member),
      ['config'],
    );
    assert.deepEqual(readAll('stage-api-cfgdisk'), before, "staging's config is its own, byte for byte");
    assert.ok(!readAll('stage-api-disk0').includes('production data'), 'no member synced');
    assert.equal(JSON.parse(ok(['describe', 'stage-api', '--json']).out).generation, 0, 'nothing changed');
    assert.deepEqual(JSON.parse(ok(['snapshots', 'stage-api', '--json']).out), [], 'no safety snapshot');
    assert.equal(JSON.parse(ok(['fsck', '--json']).out).ok, true);

    ok(['sync', 'stage-api', 'prod-api@nightly', '--member', 'disk0']);
    assert.ok(readAll('stage-api-disk0').includes('production data'));
    assert.deepEqual(readAll('stage-api-cfgdisk'), before);
  });

  it("refuses a VM sync whose small seed vdisk holds production's MAC, instance-id (its UUID) and hostname (IDENTITY_SOURCE_REFERENCE, exit 1), changes nothing; a seed naming nothing of production's syncs, and a disk over 4 MiB is not searched", () => {
    const MiB = 1024 * 1024;
    const seed = (vm: string, id: { uuid: string; mac: string }) =>
      Buffer.concat([
        Buffer.from('CD001'),
        Buffer.alloc(64 * 1024 - 5),
        Buffer.from(
          `instance-id: ${id.uuid}\nlocal-hostname: ${vm}\n\0version: 2\nethernets:\n  eth0:\n    match:\n      macaddress: '${id.mac}'\n    dhcp4: true\n`,
        ),
      ]);
    for (const [vm, id] of [
      ['prod-db', PROD],
      ['stage-db', STAGE],
    ] as const) {
      fs.writeFileSync(path.join(dir, `${vm}.xml`), domain(vm, id.uuid, id.mac));
      ok(['create', `${vm}-config`, '--type', 'file']);
      ok(['write', `${vm}-config`, '0', '--file', path.join(dir, `${vm}.xml`)]);
      // A root disk holds its own hostname: production's data, synced as it is.
      ok(['create', `${vm}-disk0`, '--type', 'vdisk', '--size', '8M']);
      writeAt(`${vm}-disk0`, 2 * MiB, `/etc/hostname: ${vm}\n`);
      ok(['create', `${vm}-seed`, '--type', 'vdisk', '--size', '1M']);
      writeAt(`${vm}-seed`, 0, seed(vm, id));
      const members = ['config', 'disk0', 'seed'].flatMap((role) => ['--member', `${role}=${vm}-${role}`]);
      ok(['create', vm, '--type', 'vm', ...members]);
    }
    ok(['snapshot', 'prod-db', 'nightly']);
    const stagingSeed = readAll('stage-db-seed');

    const refused = cli(['sync', 'stage-db', 'prod-db@nightly']);
    assert.equal(refused.status, EXIT.OPERATION_FAILED, refused.out);
    assert.match(
      refused.err,
      /^error: \[IDENTITY_SOURCE_REFERENCE\] sync of "stage-db" refused: .*seed line/,
    );
    const error = JSON.parse(cli(['sync', 'stage-db', 'prod-db@nightly', '--json']).out).error;
    assert.equal(error.code, 'IDENTITY_SOURCE_REFERENCE');
    assert.deepEqual(
      error.details.found.map((f: { path: string; name: string }) => [f.path, f.name]),
      [
        ['seed', PROD.uuid],
        ['seed', 'prod-db'],
        ['seed', PROD.mac],
      ],
    );
    assert.deepEqual(readAll('stage-db-seed'), stagingSeed, "staging's seed is its own, byte for byte");
    assert.equal(JSON.parse(ok(['describe', 'stage-db', '--json']).out).generation, 0, 'nothing changed');
    assert.equal(JSON.parse(ok(['fsck', '--json']).out).ok, true);

    // Production's seed names nothing of production's (cloud-init reads the rest from the network).
    const generic = Buffer.concat([
      Buffer.from('CD001'),
      Buffer.from('\n#cloud-config\npackage_update: true\n'),
    ]);
    writeAt('prod-db-seed', 0, Buffer.concat([generic, Buffer.alloc(stagingSeed.length - generic.length)]));
    ok(['snapshot', 'prod-db', 'nightly2']);
    const synced = ok(['sync', 'stage-db', 'prod-db@nightly2']);
    assert.doesNotMatch(synced.out, /warning/);
    assert.deepEqual(readAll('stage-db-seed').subarray(0, generic.length), generic);
    assert.ok(
      readAll('stage-db-disk0').includes('/etc/hostname: prod-db\n'),
      'the root disk is production’s',
    );
  });
});
