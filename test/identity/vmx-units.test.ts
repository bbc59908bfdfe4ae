/**
 * .vmx keys that only mean something together are written back as one unit
 * (the target's whole set): a NIC's backing (a standard port group, a vnet,
 * a distributed switch port, an NSX-T segment and port); a drive's
 * deviceType (and startConnected, clientDevice) with its fileName; cloud-init's
 * guestinfo data (taken out when staging has none). Other guestinfo keys are
 * identity fields. A staging NIC on a
 * standard port group synced from a production NIC on a distributed switch
 * keeps its port group, and none of production's switch keys is left.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import type { ReferenceOptions } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { syncConfigs } from './helpers/config-sync';

const vmx = (lines: string[]) => `${['.encoding = "UTF-8"', 'config.version = "8"', ...lines].join('\n')}\n`;
/** The lines of `text` that start with `prefix`. */
const linesOf = (text: string, prefix: string) => text.split('\n').filter((l) => l.startsWith(prefix));

const DVS = [
  'ethernet0.dvs.switchId = "50 1a 2b 3c 4d 5e 6f 70-81 92 a3 b4 c5 d6 e7 f8"',
  'ethernet0.dvs.portgroupId = "dvportgroup-1001"',
  'ethernet0.dvs.portId = "117"',
  'ethernet0.dvs.connectionId = "1234567890"',
];
const nic = (backing: string[], mac: string) => [
  'ethernet0.present = "TRUE"',
  'ethernet0.virtualDev = "vmxnet3"',
  ...backing,
  'ethernet0.addressType = "vpx"',
  `ethernet0.generatedAddress = "${mac}"`,
];

/** Files ESXi names when a VM powers on. */
const RUNTIME = [
  'sched.swap.derivedName = "/vmfs/volumes/5f1a2b3c-prod/prod-app/prod-app-8d3f2a1b.vswp"',
  'migrate.hostLog = "./prod-app-8d3f2a1b.hlog"',
  'vmxstats.filename = "prod-app.scoreboard"',
];
const runtimeLines = (text: string) => text.split('\n').filter((l) => /^(sched|migrate|vmxstats)\./.test(l));

describe('identity: .vmx keys written back as one unit', function () {
  this.timeout(120_000);
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(path.join(tempDir('snapsync-vmx-units-'), 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  const sync = (prod: string, staging: string, options: ReferenceOptions = {}) =>
    syncConfigs(pool, prod, staging, options);

  it("production's NIC on a distributed switch, staging's on a port group: staging's networkName is written back, no dvs key of production's is left", () => {
    const { report, after } = sync(
      vmx(['displayName = "prod-app"', ...nic(DVS, '00:50:56:9a:bb:cc')]),
      vmx([
        'displayName = "staging-app"',
        ...nic(['ethernet0.networkName = "stg-net"'], '00:50:56:9a:11:22'),
      ]),
    );
    assert.deepEqual(linesOf(after, 'ethernet0.'), [
      'ethernet0.present = "TRUE"',
      'ethernet0.virtualDev = "vmxnet3"',
      'ethernet0.networkName = "stg-net"',
      'ethernet0.addressType = "vpx"',
      'ethernet0.generatedAddress = "00:50:56:9a:11:22"',
    ]);
    const refs = new Map(report.references.map((r) => [r.path, r]));
    assert.equal(refs.get('config.ethernet0.networkName')?.status, 'kept');
    assert.equal(refs.get('config.ethernet0.dvs.portgroupId')?.status, 'removed');
    assert.deepEqual(report.warnings, []);
  });

  it("the other way round: staging's distributed switch port is written back in place of production's port group", () => {
    const { after } = sync(
      vmx(['displayName = "prod-app"', ...nic(['ethernet0.networkName = "prod-net"'], '00:50:56:9a:bb:cc')]),
      vmx(['displayName = "staging-app"', ...nic(DVS, '00:50:56:9a:11:22')]),
    );
    assert.deepEqual(linesOf(after, 'ethernet0.'), [
      'ethernet0.present = "TRUE"',
      'ethernet0.virtualDev = "vmxnet3"',
      ...DVS,
      'ethernet0.addressType = "vpx"',
      'ethernet0.generatedAddress = "00:50:56:9a:11:22"',
    ]);
    assert.ok(!after.includes('prod-net'));
  });

  it('CRLF, a vnet with connectionType custom on staging: its lines are added in the file’s line endings', () => {
    const crlf = (t: string) => t.replace(/\n/g, '\r\n');
    const { after } = sync(
      crlf(vmx(['displayName = "prod-app"', ...nic(DVS, '00:50:56:9a:bb:cc')])),
      vmx([
        'displayName = "staging-app"',
        ...nic(['ethernet0.connectionType = "custom"', 'ethernet0.vnet = "vmnet3"'], '00:50:56:9a:11:22'),
      ]),
    );
    assert.ok(!/[^\r]\n/.test(after), 'every line ends with CRLF');
    assert.deepEqual(linesOf(after.replace(/\r\n/g, '\n'), 'ethernet0.'), [
      'ethernet0.present = "TRUE"',
      'ethernet0.virtualDev = "vmxnet3"',
      'ethernet0.connectionType = "custom"',
      'ethernet0.vnet = "vmnet3"',
      'ethernet0.addressType = "vpx"',
      'ethernet0.generatedAddress = "00:50:56:9a:11:22"',
    ]);
  });

  it('a NIC staging does not have at all is still refused unless mapped', () => {
    assert.throws(
      () =>
        sync(
          vmx(['displayName = "prod-app"', ...nic(DVS, '00:50:56:9a:bb:cc')]),
          vmx(['displayName = "staging-app"']),
        ),
      { code: 'IDENTITY_REFERENCE_UNMAPPED' },
    );
  });

  const NSX = (segment: string, port: string, n = 0) => [
    `ethernet${n}.opaqueNetwork.id = "${segment}"`,
    `ethernet${n}.opaqueNetwork.type = "nsx.LogicalSwitch"`,
    `ethernet${n}.externalId = "${port}"`,
  ];

  it("NSX-T: staging's segment and logical port are written back in place of production's", () => {
    const { report, after } = sync(
      vmx([
        'displayName = "prod-app"',
        ...nic(NSX('1111-prod-segment', '2222-prod-port'), '00:50:56:9a:bb:cc'),
      ]),
      vmx([
        'displayName = "staging-app"',
        ...nic(NSX('3333-stg-segment', '4444-stg-port'), '00:50:56:9a:11:22'),
      ]),
    );
    assert.deepEqual(linesOf(after, 'ethernet0.'), [
      'ethernet0.present = "TRUE"',
      'ethernet0.virtualDev = "vmxnet3"',
      ...NSX('3333-stg-segment', '4444-stg-port'),
      'ethernet0.addressType = "vpx"',
      'ethernet0.generatedAddress = "00:50:56:9a:11:22"',
    ]);
    const kept = report.references.filter((r) => r.status === 'kept').map((r) => r.path);
    assert.ok(kept.includes('config.ethernet0.opaqueNetwork.id'));
    assert.ok(kept.includes('config.ethernet0.externalId'));
  });

  it("NSX-T: a NIC only production has refuses the sync (production's segment and port), unless mapped", () => {
    const prod = vmx([
      'displayName = "prod-app"',
      ...nic(['ethernet0.networkName = "net"'], '00:50:56:9a:bb:cc'),
      'ethernet1.present = "TRUE"',
      ...NSX('1111-prod-segment', '2222-prod-port', 1),
    ]);
    const staging = vmx([
      'displayName = "staging-app"',
      ...nic(['ethernet0.networkName = "net"'], '00:50:56:9a:11:22'),
    ]);
    assert.throws(
      () => sync(prod, staging),
      (err: Error & { code?: string; details?: unknown }) => {
        assert.equal(err.code, 'IDENTITY_REFERENCE_UNMAPPED');
        const paths = JSON.stringify(err.details);
        assert.ok(
          paths.includes('config.ethernet1.opaqueNetwork.id') &&
            paths.includes('config.ethernet1.externalId'),
          paths,
        );
        return true;
      },
    );
    pool.close();
    pool = Pool.create(path.join(tempDir('snapsync-vmx-units-'), 'pool'), { blockSize: 4096 });
    const { after } = sync(prod, staging, {
      referenceMap: { '1111-prod-segment': '3333-stg-segment', '2222-prod-port': '4444-stg-port' },
    });
    assert.deepEqual(linesOf(after, 'ethernet1.o').concat(linesOf(after, 'ethernet1.e')), [
      'ethernet1.opaqueNetwork.id = "3333-stg-segment"',
      'ethernet1.opaqueNetwork.type = "nsx.LogicalSwitch"',
      'ethernet1.externalId = "4444-stg-port"',
    ]);
  });

  it("a CD drive: staging's host drive (cdrom-raw, auto detect, not connected at power-on) stays whole when production's holds an ISO", () => {
    const drive = (lines: string[]) => ['sata0.present = "TRUE"', 'sata0:0.present = "TRUE"', ...lines];
    const { report, after } = sync(
      vmx([
        'displayName = "prod-app"',
        ...drive([
          'sata0:0.deviceType = "cdrom-image"',
          'sata0:0.fileName = "/vmfs/volumes/iso/seed-prod.iso"',
        ]),
      ]),
      vmx([
        'displayName = "staging-app"',
        ...drive([
          'sata0:0.deviceType = "cdrom-raw"',
          'sata0:0.fileName = "auto detect"',
          'sata0:0.startConnected = "FALSE"',
        ]),
      ]),
    );
    assert.deepEqual(linesOf(after, 'sata0:0.'), [
      'sata0:0.present = "TRUE"',
      'sata0:0.deviceType = "cdrom-raw"',
      'sata0:0.fileName = "auto detect"',
      'sata0:0.startConnected = "FALSE"',
    ]);
    const deviceType = report.references.find((r) => r.path === 'config.sata0:0.deviceType');
    assert.deepEqual(deviceType && [deviceType.status, deviceType.value, deviceType.sourceValue], [
      'kept',
      'cdrom-raw',
      'cdrom-image',
    ]);
  });

  it("a CD drive the other way round: staging's ISO stays an ISO (cdrom-image) when production's is a host drive", () => {
    const { after } = sync(
      vmx([
        'displayName = "prod-app"',
        'ide1:0.deviceType = "atapi-cdrom"',
        'ide1:0.fileName = "auto detect"',
      ]),
      vmx([
        'displayName = "staging-app"',
        'ide1:0.deviceType = "cdrom-image"',
        'ide1:0.fileName = "/vmfs/volumes/iso/seed-stg.iso"',
      ]),
    );
    assert.deepEqual(linesOf(after, 'ide1:0.'), [
      'ide1:0.deviceType = "cdrom-image"',
      'ide1:0.fileName = "/vmfs/volumes/iso/seed-stg.iso"',
    ]);
  });

  /** cloud-init's VMware datasource data: base64 of a meta-data with the VM's instance-id, hostname and address. */
  const metadata = (vm: string, ip: string) =>
    Buffer.from(
      `instance-id: ${vm}\nlocal-hostname: ${vm}\nnetwork:\n  version: 2\n  ethernets:\n    ens192:\n      addresses: [${ip}/24]\n`,
    ).toString('base64');
  const PROD_CLOUD_INIT = [
    `guestinfo.metadata = "${metadata('prod-app', '10.10.0.12')}"`,
    'guestinfo.metadata.encoding = "base64"',
    `guestinfo.userdata = "${Buffer.from('#cloud-config\nhostname: prod-app\n').toString('base64')}"`,
    'guestinfo.userdata.encoding = "base64"',
  ];

  it("cloud-init's guestinfo: staging's own metadata is written back, production's userdata staging lacks is taken out", () => {
    const own = [
      `guestinfo.metadata = "${metadata('staging-app', '10.30.0.12')}"`,
      'guestinfo.metadata.encoding = "base64"',
    ];
    const { report, after } = sync(
      vmx(['displayName = "prod-app"', ...PROD_CLOUD_INIT]),
      vmx(['displayName = "staging-app"', ...own]),
    );
    assert.deepEqual(linesOf(after, 'guestinfo.'), own);
    const userdata = report.references.find((r) => r.path === 'config.guestinfo.userdata');
    assert.equal(userdata?.status, 'removed');
    assert.deepEqual(report.warnings, []);
  });

  it("cloud-init's guestinfo: staging has none: production's (its IP, hostname, instance-id) is taken out, with a warning", () => {
    const { report, after } = sync(
      vmx(['displayName = "prod-app"', 'guestinfo.hostname = "prod-app"', ...PROD_CLOUD_INIT]),
      vmx(['displayName = "staging-app"', 'guestinfo.hostname = "staging-app"']),
    );
    assert.deepEqual(linesOf(after, 'guestinfo.'), ['guestinfo.hostname = "staging-app"']);
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      ['metadata', 'metadata.encoding', 'userdata', 'userdata.encoding'].map((k) => [
        `config.guestinfo.${k}`,
        'IDENTITY_SOURCE_REMOVED',
      ]),
    );
  });

  it("ESXi's runtime files of a production VM that ran: taken out of a staging .vmx that never ran, not refused", () => {
    const { report, after } = sync(
      vmx(['displayName = "prod-app"', ...RUNTIME]),
      vmx(['displayName = "staging-app"']),
    );
    assert.deepEqual(runtimeLines(after), [], after);
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      ['sched.swap.derivedName', 'migrate.hostLog', 'vmxstats.filename'].map((k) => [
        `config.${k}`,
        'IDENTITY_SOURCE_REMOVED',
      ]),
    );
  });

  it("ESXi's runtime files: staging's own swap file is kept, production's other runtime files go", () => {
    const { after } = sync(
      vmx(['displayName = "prod-app"', ...RUNTIME]),
      vmx([
        'displayName = "staging-app"',
        'sched.swap.derivedName = "/vmfs/volumes/stage/staging-app/s.vswp"',
      ]),
    );
    assert.deepEqual(runtimeLines(after), [
      'sched.swap.derivedName = "/vmfs/volumes/stage/staging-app/s.vswp"',
    ]);
  });

  it("other guestinfo keys (an OVF's guestinfo.ipaddr): staging's own is restored; one staging lacks is production's, with IDENTITY_FROM_SOURCE", () => {
    const { report, after } = sync(
      vmx(['displayName = "prod-app"', 'guestinfo.ipaddr = "10.10.0.12"', 'guestinfo.gateway = "10.10.0.1"']),
      vmx(['displayName = "staging-app"', 'GuestInfo.IPAddr = "10.30.0.12"']),
    );
    assert.deepEqual(linesOf(after, 'guestinfo.'), [
      'guestinfo.ipaddr = "10.30.0.12"',
      'guestinfo.gateway = "10.10.0.1"',
    ]);
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      [['config.guestinfo.gateway', 'IDENTITY_FROM_SOURCE']],
    );
  });

  it("cloud-init's guestinfo: production has none: staging's own is written back all the same", () => {
    const own = [
      `guestinfo.metadata = "${metadata('staging-app', '10.30.0.12')}"`,
      'guestinfo.metadata.encoding = "base64"',
    ];
    const { report, after } = sync(
      vmx([
        'displayName = "prod-app"',
        'nvram = "prod-app.nvram"',
        'scsi0:0.fileName = "prod-app-disk0.vmdk"',
      ]),
      vmx([
        'displayName = "staging-app"',
        ...own,
        'nvram = "staging-app.nvram"',
        'scsi0:0.fileName = "stg.vmdk"',
      ]),
    );
    assert.deepEqual(linesOf(after, 'guestinfo.'), own);
    assert.match(after, /^scsi0:0.fileName = "stg.vmdk"\nguestinfo.metadata = /m);
    assert.deepEqual(report.warnings, []);
  });
  // A NIC's MAC keys are one unit: staging's static MAC stays static with its address, its generated one
  // generated; production's MAC keys staging lacks are taken out (F2).
  const macNic = (mac: string[]) => [
    'ethernet0.present = "TRUE"',
    'ethernet0.virtualDev = "vmxnet3"',
    'ethernet0.networkName = "VM Network"',
    ...mac,
  ];
  const STATIC = ['ethernet0.addressType = "static"', 'ethernet0.address = "00:50:56:01:aa:01"'];
  const GENERATED = [
    'ethernet0.addressType = "vpx"',
    'ethernet0.generatedAddress = "00:50:56:9a:01:02"',
    'ethernet0.generatedAddressOffset = "0"',
  ];
  const OWN_GENERATED = [
    'ethernet0.addressType = "generated"',
    'ethernet0.generatedAddress = "00:0c:29:aa:bb:02"',
    'ethernet0.generatedAddressOffset = "0"',
    'ethernet0.checkMACAddress = "FALSE"',
  ];

  /** Syncs staging's MAC keys from production's: every ethernet0 line is staging's, and the report says so. */
  const macSync = (prod: string[], staging: string[], kept: string, taken: string) => {
    const { report, after } = sync(
      vmx(['displayName = "prod-app"', ...macNic(prod)]),
      vmx(['displayName = "staging-app"', ...macNic(staging)]),
    );
    assert.deepEqual(linesOf(after, 'ethernet0.'), macNic(staging));
    assert.deepEqual(report.warnings, []);
    const fields = new Map(report.fields.map((f) => [f.path, f]));
    assert.equal(fields.get(`config.ethernet0.${kept}`)?.status, 'restored');
    assert.equal(fields.has(`config.ethernet0.${taken}`), false);
  };

  it("a NIC's MAC: staging's static address stays static, production's generated MAC keys are taken out", () =>
    macSync(GENERATED, STATIC, 'address', 'generatedAddress'));

  it("a NIC's MAC the other way round: staging's generated MAC (and its offset, checkMACAddress) stays, production's static address is taken out", () =>
    macSync(STATIC, OWN_GENERATED, 'generatedAddress', 'address'));
});
