/**
 * References are identity: after `sync staging-app prod-app@nightly`, every
 * reference in staging's configs to storage or networks is staging's own.
 * Realistic VMs that share nothing (test/fixtures/identity/references): a
 * .vmx with two SCSI disks, a CD-ROM ISO and two NICs on different networks;
 * a libvirt domain with file-, NBD- and pool-volume-backed disks and network
 * and bridge interfaces; cloud-init meta-data with hostname/fqdn and a v2
 * network-config. Synced whole and by subset through a real pool, and checked
 * by parsing the resulting bytes.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import {
  createIdentityHooks,
  detectFormat,
  type IdentityReport,
  parseConfig,
  type ReferenceOptions,
} from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { addConfig, readText } from './helpers/pool';
import { run } from './helpers/tools';

const fixture = (name: string) =>
  fs.readFileSync(path.join(__dirname, '../fixtures/identity/references', name), 'utf8');

/** Every reference of a config: path → its exact text in the file, and the names in it. */
function referencesOf(text: string): Map<string, { text: string; names: string[]; value: string }> {
  const format = detectFormat(text);
  assert.ok(format, 'a known format');
  const parsed = parseConfig(format, text);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
  const out = new Map<string, { text: string; names: string[]; value: string }>();
  for (const s of parsed.spans) {
    if (s.reference)
      out.set(s.field, { text: text.slice(s.start, s.end), names: s.reference.names, value: s.value.value });
  }
  return out;
}

/** Identity values of a config: path → value. */
function identityOf(text: string): Map<string, string> {
  const parsed = parseConfig(detectFormat(text)!, text);
  assert.ok(parsed.ok);
  return new Map(parsed.spans.filter((s) => !s.reference).map((s) => [s.field, s.value.value]));
}

/**
 * What must hold after a sync for one config: every target reference byte for byte as it was, no other
 * reference than the target's (plus `mapped`), no name from the source's references anywhere in the file,
 * and every identity value the target's.
 */
function assertOwnReferences(
  after: string,
  target: string,
  source: string,
  mapped: Record<string, string> = {},
): void {
  const own = referencesOf(target);
  const now = referencesOf(after);
  const theirs = referencesOf(source);
  for (const [field, ref] of own) {
    if (theirs.has(field))
      assert.equal(now.get(field)?.text, ref.text, `${field} is the target's, byte for byte`);
  }
  const expected = [...own.keys()].filter((f) => theirs.has(f)).concat(Object.keys(mapped));
  assert.deepEqual([...now.keys()].sort(), expected.sort(), 'the references are the target’s (plus mapped)');
  for (const [field, value] of Object.entries(mapped)) assert.equal(now.get(field)?.value, value, field);
  const targetNames = new Set([...own.values()].flatMap((r) => r.names));
  for (const name of new Set([...theirs.values()].flatMap((r) => r.names))) {
    if (!targetNames.has(name))
      assert.ok(!after.includes(name), `the source's ${name} is nowhere in the file`);
  }
  const ids = identityOf(target);
  for (const [field, value] of identityOf(after)) {
    if (ids.has(field)) assert.equal(value, ids.get(field), `${field} is the target's`);
  }
}

const KiB = 1024;

describe('identity: references in realistic VM configs', function () {
  this.timeout(120_000);
  let pool: Pool;
  let dir: string;
  beforeEach(() => {
    dir = tempDir('snapsync-references-');
    pool = Pool.create(path.join(dir, 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  /** A VM `<name>` with its config files and two 64 KiB disks filled with `fill`. */
  function vm(name: string, configs: Record<string, string>, fill: string, disks = ['disk0', 'disk1']): void {
    pool.createContainer({ name, type: 'vm' });
    for (const [role, text] of Object.entries(configs)) addConfig(pool, name, role, text);
    for (const disk of disks) {
      pool.createContainer({ name: `${name}-${disk}`, type: 'vdisk', size: 64 * KiB });
      pool.write(`${name}-${disk}`, 0, Buffer.alloc(64 * KiB, fill));
      pool.addMember(name, disk, `${name}-${disk}`);
    }
  }
  const sync = (options: ReferenceOptions = {}, members?: string[]) =>
    pool.sync('staging-app', 'prod-app@nightly', {
      hooks: createIdentityHooks('default', options),
      ...(members ? { members } : {}),
    }).identity as IdentityReport;

  const FORMATS = [
    { what: 'vmx', configs: (side: string) => ({ config: fixture(`${side}-app.vmx`) }) },
    { what: 'libvirt', configs: (side: string) => ({ config: fixture(`${side}-app.xml`) }) },
    {
      what: 'cloud-init',
      configs: (side: string) => ({
        seed: fixture(`${side}-app.meta-data`),
        netcfg: fixture(`${side}-app.network-config`),
      }),
    },
  ];

  for (const { what, configs } of FORMATS) {
    it(`${what}: a whole-VM sync keeps every reference of staging's, byte for byte; nothing of production's survives`, () => {
      vm('prod-app', configs('prod'), 'P');
      vm('staging-app', configs('staging'), 'S');
      pool.snapshot('prod-app', 'nightly');
      const report = sync();
      for (const role of Object.keys(configs('prod'))) {
        const after = readText(pool, `staging-app-${role}`);
        assertOwnReferences(after, configs('staging')[role as never], configs('prod')[role as never]);
      }
      // The data is production's; the identity warnings are none.
      assert.equal(pool.read('staging-app-disk0', 0, 1).toString(), 'P');
      assert.deepEqual(report.warnings, []);
      // Each reference is reported with what the source had.
      for (const r of report.references) {
        assert.ok(r.status === 'kept' || r.status === 'removed', `${r.path} ${r.status}`);
        assert.notEqual(r.sourceValue, undefined);
      }
    });

    it(`${what}: a sync of the config members alone, then of the disks alone`, () => {
      vm('prod-app', configs('prod'), 'P');
      vm('staging-app', configs('staging'), 'S');
      pool.snapshot('prod-app', 'nightly');
      const roles = Object.keys(configs('prod'));
      sync({}, roles);
      for (const role of roles) {
        assertOwnReferences(
          readText(pool, `staging-app-${role}`),
          configs('staging')[role as never],
          configs('prod')[role as never],
        );
      }
      assert.equal(pool.read('staging-app-disk0', 0, 1).toString(), 'S', 'disks not synced');
      const configsBefore = roles.map((r) => readText(pool, `staging-app-${r}`));
      const disks = sync({}, ['disk0', 'disk1']);
      assert.deepEqual(disks.references, [], 'no config synced, no reference touched');
      assert.deepEqual(
        roles.map((r) => readText(pool, `staging-app-${r}`)),
        configsBefore,
      );
      assert.equal(pool.read('staging-app-disk1', 0, 1).toString(), 'P');
    });
  }

  it('vmx: the report lists each reference kept, with what production had', () => {
    vm('prod-app', { config: fixture('prod-app.vmx') }, 'P');
    vm('staging-app', { config: fixture('staging-app.vmx') }, 'S');
    pool.snapshot('prod-app', 'nightly');
    const report = sync();
    const byPath = new Map(report.references.map((r) => [r.path, r]));
    assert.deepEqual(byPath.get('config.scsi0:1.fileName'), {
      path: 'config.scsi0:1.fileName',
      value: '/vmfs/volumes/ds-stage/staging-app-01/staging-app-01_1.vmdk',
      status: 'kept',
      sourceValue: '/vmfs/volumes/ds-prod/prod-app-01/prod-app-01_1.vmdk',
    });
    assert.equal(byPath.get('config.ethernet0.networkName')?.sourceValue, 'prod-frontend');
    assert.equal(byPath.get('config.ethernet1.dvs.portgroupId')?.value, 'dvportgroup-2002');
    assert.equal(
      byPath.get('config.sata0:0.fileName')?.value,
      '/vmfs/volumes/iso-stage/ubuntu-22.04.4-live-server-amd64.iso',
    );
    assert.deepEqual([...byPath.keys()].sort(), [
      'config.ethernet0.addressType',
      'config.ethernet0.networkName',
      'config.ethernet1.addressType',
      'config.ethernet1.dvs.portId',
      'config.ethernet1.dvs.portgroupId',
      'config.ethernet1.dvs.switchId',
      'config.extendedConfigFile',
      'config.migrate.hostLog',
      'config.nvram',
      'config.sata0:0.deviceType',
      'config.sata0:0.fileName',
      'config.sched.swap.derivedName',
      'config.scsi0:0.deviceType',
      'config.scsi0:0.fileName',
      'config.scsi0:1.deviceType',
      'config.scsi0:1.fileName',
      'config.serial0.fileName',
      'config.serial0.fileType',
      'config.vmxstats.filename',
    ]);
    const after = readText(pool, 'staging-app-config');
    assert.match(after, /^memSize = "16384"$/m, "production's settings otherwise");
  });

  it("libvirt: production's CD-ROM image and backing chain are taken out where staging has none; the result validates", () => {
    vm('prod-app', { config: fixture('prod-app.xml') }, 'P');
    vm('staging-app', { config: fixture('staging-app.xml') }, 'S');
    pool.snapshot('prod-app', 'nightly');
    const report = sync();
    const removed = report.references
      .filter((r) => r.status === 'removed')
      .map((r) => [r.path, r.sourceValue]);
    assert.deepEqual(removed, [
      [
        'config.libvirt.disk.vda.backingStore',
        'type=file format.type=qcow2 source.file=/var/lib/libvirt/images/golden/prod-base.qcow2',
      ],
      ['config.libvirt.disk.sda.source', 'file=/var/lib/libvirt/iso/prod-tools.iso'],
    ]);
    const after = readText(pool, 'staging-app-config');
    assert.ok(!after.includes('prod-'), 'no production name left anywhere');
    assert.match(after, /<memory unit='KiB'>16777216<\/memory>/, "production's settings otherwise");
    fs.writeFileSync(path.join(dir, 'out.xml'), after);
    run('virt-xml-validate', [path.join(dir, 'out.xml'), 'domain']); // throws when not a valid domain
  });

  it('cloud-init: hostname, fqdn, instance-id and every address, gateway, MAC and name of the network-config are staging’s', () => {
    const configs = (side: string) => ({
      seed: fixture(`${side}-app.meta-data`),
      netcfg: fixture(`${side}-app.network-config`),
    });
    vm('prod-app', configs('prod'), 'P');
    vm('staging-app', configs('staging'), 'S');
    pool.snapshot('prod-app', 'nightly');
    const report = sync();
    const seed = readText(pool, 'staging-app-seed');
    assert.equal(
      seed,
      '# NoCloud meta-data, production app server\ninstance-id: iid-staging-app-01\nlocal-hostname: staging-app-01\nhostname: staging-app-01\nfqdn: "staging-app-01.example.internal"\n',
    );
    const netcfg = readText(pool, 'staging-app-netcfg');
    assert.equal(
      netcfg,
      fixture('prod-app.network-config')
        .replace('ens3:', 'eth0:')
        .replace('"52:54:00:6b:1a:01"', "'52:54:00:aa:2b:01'")
        .replace('set-name: ens3', 'set-name: eth0')
        .replace('10.20.0.15/24', '10.30.0.15/24')
        .replace('"fd00:20::15/64"', '"fd00:30::15/64"')
        .replace('via: 10.20.0.1', 'via: 10.30.0.1')
        .replace('[10.20.0.2, 10.20.0.3]', '[10.30.0.2]'),
      "production's mtu, staging's addresses",
    );
    const restored = report.fields.filter((f) => f.status === 'restored').map((f) => f.path);
    for (const p of [
      'seed.cloudinit.hostname',
      'seed.cloudinit.fqdn',
      'netcfg.netcfg.ethernets.0.id',
      'netcfg.netcfg.ethernets.0.match.macaddress',
      'netcfg.netcfg.ethernets.0.routes.0.via',
    ])
      assert.ok(restored.includes(p), p);
  });

  it("production gained a disk: its references map to staging's member of the same role (mapped)", () => {
    const prodVmx = fixture('prod-app.vmx').replace(
      'sata0.present = "TRUE"\n',
      'scsi0:2.deviceType = "scsi-hardDisk"\nscsi0:2.fileName = "prod-app-disk2.vmdk"\nscsi0:2.present = "TRUE"\nsata0.present = "TRUE"\n',
    );
    const prodXml = fixture('prod-app.xml').replace(
      '    <interface',
      "    <disk type='network' device='disk'>\n      <driver name='qemu' type='raw'/>\n      <source protocol='nbd' name='prod-app-disk2'>\n        <host name='nbd.storage.internal' port='10809'/>\n      </source>\n      <target dev='vdd' bus='virtio'/>\n    </disk>\n    <interface",
    );
    for (const [config, target, mapped] of [
      [
        prodVmx,
        fixture('staging-app.vmx'),
        { 'scsi0:2.deviceType': 'scsi-hardDisk', 'scsi0:2.fileName': 'staging-app-disk2.vmdk' },
      ],
      [
        prodXml,
        fixture('staging-app.xml'),
        {
          'libvirt.disk.vdd.type': 'network',
          'libvirt.disk.vdd.driver': 'name=qemu type=raw',
          'libvirt.disk.vdd.source':
            'protocol=nbd name=staging-app-disk2 host.name=nbd.storage.internal host.port=10809',
        },
      ],
    ] as const) {
      pool.close();
      pool = Pool.create(path.join(tempDir('snapsync-references-'), 'pool'), { blockSize: 4096 });
      vm('prod-app', { config }, 'P', ['disk0', 'disk1', 'disk2']);
      vm('staging-app', { config: target }, 'S');
      pool.snapshot('prod-app', 'nightly');
      const report = sync();
      assert.equal(
        pool.describe('staging-app').members.disk2,
        'staging-app-disk2',
        'the sync made the member',
      );
      const after = readText(pool, 'staging-app-config');
      assertOwnReferences(after, target, config, mapped);
      const disk2 = report.references.filter((r) => r.status === 'mapped');
      assert.ok(disk2.length > 0);
      for (const r of disk2) assert.ok(!r.value.includes('prod-app-disk2'), r.value);
      assert.ok(disk2.some((r) => /member disk2: prod-app-disk2 → staging-app-disk2/.test(r.via ?? '')));
      assert.ok(!after.includes('prod-app'), 'nothing names production');
      if (config === prodXml) {
        fs.writeFileSync(path.join(dir, 'mapped.xml'), after);
        run('virt-xml-validate', [path.join(dir, 'mapped.xml'), 'domain']); // throws when not a valid domain
      }
    }
  });

  it("a subset sync of the config alone: production's new disk cannot map to a member staging does not have (refused)", () => {
    const prodVmx = fixture('prod-app.vmx').replace(
      'sata0.present = "TRUE"\n',
      'scsi0:2.fileName = "prod-app-disk2.vmdk"\nscsi0:2.present = "TRUE"\nsata0.present = "TRUE"\n',
    );
    vm('prod-app', { config: prodVmx }, 'P', ['disk0', 'disk1', 'disk2']);
    vm('staging-app', { config: fixture('staging-app.vmx') }, 'S');
    pool.snapshot('prod-app', 'nightly');
    assert.throws(() => sync({}, ['config']), {
      code: 'IDENTITY_REFERENCE_UNMAPPED',
      message: /config\.scsi0:2\.fileName = prod-app-disk2\.vmdk/,
    });
    assert.equal(readText(pool, 'staging-app-config'), fixture('staging-app.vmx'));
    // Synced with the disk, the member exists and the reference maps to it.
    const report = sync({}, ['config', 'disk2']);
    assert.equal(
      report.references.find((r) => r.path === 'config.scsi0:2.fileName')?.value,
      'staging-app-disk2.vmdk',
    );
  });

  it('an unmappable reference refuses the sync: nothing changes; an explicit referenceMap maps it', () => {
    const prodVmx = fixture('prod-app.vmx').replace(
      'serial0.present',
      'ethernet2.virtualDev = "vmxnet3"\nethernet2.networkName = "prod-dmz"\nethernet2.present = "TRUE"\nserial0.present',
    );
    vm('prod-app', { config: prodVmx }, 'P', ['disk0', 'disk1', 'disk2']);
    vm('staging-app', { config: fixture('staging-app.vmx') }, 'S');
    pool.snapshot('prod-app', 'nightly');
    const before = {
      containers: pool.listContainers(),
      snapshots: pool.listSnapshots(),
      config: readText(pool, 'staging-app-config'),
    };
    assert.throws(
      () => sync(),
      (err: { code: string; details: { references: unknown } }) => {
        assert.equal(err.code, 'IDENTITY_REFERENCE_UNMAPPED');
        assert.deepEqual(err.details.references, [
          { path: 'config.ethernet2.networkName', sourceValue: 'prod-dmz', unmapped: ['prod-dmz'] },
        ]);
        return true;
      },
    );
    assert.deepEqual(pool.listContainers(), before.containers, 'no member made, no generation bumped');
    assert.deepEqual(pool.listSnapshots(), before.snapshots, 'no safety snapshot');
    assert.equal(readText(pool, 'staging-app-config'), before.config);
    assert.equal(pool.read('staging-app-disk0', 0, 1).toString(), 'S');

    const report = sync({ referenceMap: { 'prod-dmz': 'staging-dmz' } });
    assert.deepEqual(
      report.references.find((r) => r.path === 'config.ethernet2.networkName'),
      {
        path: 'config.ethernet2.networkName',
        value: 'staging-dmz',
        status: 'mapped',
        sourceValue: 'prod-dmz',
        via: 'referenceMap: prod-dmz → staging-dmz',
      },
    );
    const after = readText(pool, 'staging-app-config');
    assert.match(after, /^ethernet2\.networkName = "staging-dmz"$/m);
    assertOwnReferences(after, fixture('staging-app.vmx'), prodVmx, {
      'ethernet2.networkName': 'staging-dmz',
    });
  });

  it('the safety net: a name of a production container left outside any known reference refuses the sync, unless allowed by name', () => {
    // An annotation is not a reference any profile knows, but it names production's disk member.
    const prodVmx = fixture('prod-app.vmx').replace(
      'tools.syncTime',
      'annotation = "restore from prod-app-disk1 if lost"\ntools.syncTime',
    );
    vm('prod-app', { config: prodVmx }, 'P');
    vm('staging-app', { config: fixture('staging-app.vmx') }, 'S');
    pool.snapshot('prod-app', 'nightly');
    const config = readText(pool, 'staging-app-config');
    assert.throws(
      () => sync(),
      (err: { code: string; details: { found: Array<{ path: string; name: string; line: number }> } }) => {
        assert.equal(err.code, 'IDENTITY_SOURCE_REFERENCE');
        assert.deepEqual(
          err.details.found.map((f) => [f.path, f.name]),
          [['config', 'prod-app-disk1']],
        );
        return true;
      },
    );
    assert.equal(readText(pool, 'staging-app-config'), config, 'nothing changed');
    const report = sync({ allowSourceReferences: ['prod-app-disk1'] });
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      [['config', 'IDENTITY_SOURCE_REFERENCE']],
    );
    // The UUID of a production container is a source name too, in any spelling.
    const uuid = pool.describe('prod-app-disk0').uuid;
    pool.write(
      'prod-app-config',
      0,
      Buffer.from(prodVmx.replace('tools.syncTime = "FALSE"', `guestinfo.source = "${uuid.toUpperCase()}"`)),
    );
    pool.snapshot('prod-app', 'nightly2');
    assert.throws(() => pool.sync('staging-app', 'prod-app@nightly2', { hooks: createIdentityHooks() }), {
      code: 'IDENTITY_SOURCE_REFERENCE',
    });
  });

  it('CRLF files and comments: kept as the synced file has them; the target’s lines take its line ending', () => {
    const crlf = (t: string) => t.replace(/\n/g, '\r\n');
    const prodVmx = crlf(`# managed by vCenter, do not edit\n${fixture('prod-app.vmx')}`).replace(
      'tools.syncTime = "FALSE"',
      'tools.syncTime = "FALSE" # set by policy',
    );
    const prodXml = crlf(
      fixture('prod-app.xml').replace('<devices>', '<devices>\n    <!-- disks: see CMDB -->'),
    );
    for (const [config, target] of [
      [prodVmx, fixture('staging-app.vmx')],
      [prodXml, fixture('staging-app.xml')],
    ] as const) {
      pool.close();
      pool = Pool.create(path.join(tempDir('snapsync-references-'), 'pool'), { blockSize: 4096 });
      vm('prod-app', { config }, 'P');
      vm('staging-app', { config: target }, 'S');
      pool.snapshot('prod-app', 'nightly');
      sync();
      const after = readText(pool, 'staging-app-config');
      assert.ok(!/[^\r]\n/.test(after), 'every line ends with CRLF');
      assert.ok(after.includes('# managed by vCenter') || after.includes('<!-- disks: see CMDB -->'));
      assertOwnReferences(after.replace(/\r\n/g, '\n'), target, config.replace(/\r\n/g, '\n'));
    }
  });
});
