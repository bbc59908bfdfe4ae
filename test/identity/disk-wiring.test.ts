/**
 * Disk wiring: a VM sync pairs members by role (sw-root ← pw-os, sw-db ←
 * pw-data), so after `sync staging-web prod-web@nightly` each disk device of
 * staging's config must name the staging member that holds the data
 * production's config has at that device, even when production wired its
 * disks the other way round (vda → pw-data, vdb → pw-os). Checked the way a
 * user would: for each device, which member the synced config names, and
 * what data that member now holds. Members are not named `<vm>-<role>`.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { createIdentityHooks, detectFormat, type IdentityReport, parseConfig } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { addConfig, readText } from './helpers/pool';
import { run } from './helpers/tools';

const KiB = 1024;
/** Each side's disk members by role, and the byte each one's data is made of. */
const PROD = { disk0: { name: 'pw-os', fill: 'O' }, disk1: { name: 'pw-data', fill: 'D' } };
const STAGING = { disk0: { name: 'sw-root', fill: 'r' }, disk1: { name: 'sw-db', fill: 'b' } };

const disk = (type: string, format: string, source: string, dev: string) =>
  `    <disk type='${type}' device='disk'>\n      <driver name='qemu' type='${format}'/>\n      ${source}\n      <target dev='${dev}' bus='virtio'/>\n    </disk>\n`;

const domain = (name: string, uuid: string, disks: string) =>
  `<domain type='kvm'>\n  <name>${name}</name>\n  <uuid>${uuid}</uuid>\n  <memory unit='KiB'>1048576</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n  <devices>\n${disks}  </devices>\n</domain>\n`;

/** Production wires vda to its data disk and vdb to its OS disk. */
const PROD_XML = domain(
  'prod-web-01',
  '6a1f0c3e-2b7d-4e59-9c84-0d3f5e7a9b21',
  disk('file', 'raw', "<source file='/var/lib/libvirt/images/pw-data.img'/>", 'vda') +
    disk('file', 'qcow2', "<source file='/var/lib/libvirt/images/pw-os.qcow2'/>", 'vdb'),
);
/** Staging wires vda to its OS disk (a qcow2 file) and vdb to its database disk (an LVM volume). */
const STAGING_XML = domain(
  'staging-web-01',
  '0b6f2d1e-8a47-4c39-b1e2-5f7d3a9c8e10',
  disk('file', 'qcow2', "<source file='/var/lib/libvirt/images/sw-root.qcow2'/>", 'vda') +
    disk('block', 'raw', "<source dev='/dev/vg0/sw-db'/>", 'vdb'),
);

const vmx = (name: string, disk0: string, disk1: string) =>
  `.encoding = "UTF-8"\nconfig.version = "8"\nvirtualHW.version = "19"\ndisplayName = "${name}"\nscsi0.present = "TRUE"\nscsi0.virtualDev = "pvscsi"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "${disk0}"\nscsi0:1.present = "TRUE"\nscsi0:1.fileName = "${disk1}"\n`;
const PROD_VMX = vmx('prod-web-01', 'pw-data.vmdk', 'pw-os.vmdk');
const STAGING_VMX = vmx(
  'staging-web-01',
  '/vmfs/volumes/ds1/sw/sw-root.vmdk',
  '/vmfs/volumes/ds1/sw/sw-db.vmdk',
);

describe('identity: disk wiring follows production across a sync', function () {
  this.timeout(120_000);
  let pool: Pool;
  let dir: string;
  beforeEach(() => {
    dir = tempDir('snapsync-wiring-');
    pool = Pool.create(path.join(dir, 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  function vm(name: string, config: string, disks: Record<string, { name: string; fill: string }>): void {
    pool.createContainer({ name, type: 'vm' });
    addConfig(pool, name, 'config', config);
    for (const [role, d] of Object.entries(disks)) {
      pool.createContainer({ name: d.name, type: 'vdisk', size: 64 * KiB });
      pool.write(d.name, 0, Buffer.alloc(64 * KiB, d.fill));
      pool.addMember(name, role, d.name);
    }
  }

  /** Device → the data (first byte) of the member its disk reference names, as the guest would see it. */
  function layout(vmName: string): Record<string, string> {
    const text = readText(pool, `${vmName}-config`);
    const parsed = parseConfig(detectFormat(text)!, text);
    assert.ok(parsed.ok);
    const members = Object.values(pool.describe(vmName).members);
    const out: Record<string, string> = {};
    for (const s of parsed.spans) {
      if (!/(\.source|\.fileName)$/.test(s.field) || !s.reference?.device) continue;
      const named = members.filter((m) => new RegExp(`(^|[^a-z0-9])${m}([^a-z0-9]|$)`).test(s.value.value));
      out[s.reference.device] = named.map((m) => pool.read(m, 0, 1).toString()).join(',');
    }
    return out;
  }

  const sync = (members?: string[]) =>
    pool.sync('staging-web', 'prod-web@nightly', {
      hooks: createIdentityHooks(),
      ...(members ? { members } : {}),
    }).identity as IdentityReport;

  it("libvirt: production swapped vda and vdb: staging's vda names the member holding production's vda data, with its own source, type and driver", () => {
    vm('prod-web', PROD_XML, PROD);
    vm('staging-web', STAGING_XML, STAGING);
    pool.snapshot('prod-web', 'nightly');
    assert.deepEqual(layout('prod-web'), { 'libvirt.disk.vda': 'D', 'libvirt.disk.vdb': 'O' });
    const report = sync();
    assert.deepEqual(layout('staging-web'), layout('prod-web'), "staging's devices see production's data");
    const after = readText(pool, 'staging-web-config');
    // Each device is the whole of staging's own disk of that member: an LVM volume is still raw, the qcow2 still qcow2.
    assert.ok(
      after.includes(disk('block', 'raw', "<source dev='/dev/vg0/sw-db'/>", 'vda')),
      `vda is staging's database disk:\n${after}`,
    );
    assert.ok(
      after.includes(disk('file', 'qcow2', "<source file='/var/lib/libvirt/images/sw-root.qcow2'/>", 'vdb')),
      `vdb is staging's OS disk:\n${after}`,
    );
    assert.ok(!/pw-|prod-web/.test(after), 'nothing names production');
    const vda = report.references.find((r) => r.path === 'config.libvirt.disk.vda.source');
    assert.deepEqual(vda && { ...vda, via: undefined }, {
      path: 'config.libvirt.disk.vda.source',
      value: 'dev=/dev/vg0/sw-db',
      status: 'mapped',
      sourceValue: 'file=/var/lib/libvirt/images/pw-data.img',
      via: undefined,
    });
    assert.match(vda!.via!, /member disk1: pw-data → sw-db/);
    fs.writeFileSync(path.join(dir, 'out.xml'), after);
    run('virt-xml-validate', [path.join(dir, 'out.xml'), 'domain']); // throws when not a valid domain
  });

  it("vmx: production swapped scsi0:0 and scsi0:1: staging's scsi0:0 names the member holding production's scsi0:0 data", () => {
    vm('prod-web', PROD_VMX, PROD);
    vm('staging-web', STAGING_VMX, STAGING);
    pool.snapshot('prod-web', 'nightly');
    const report = sync();
    assert.deepEqual(layout('staging-web'), { 'scsi0:0': 'D', 'scsi0:1': 'O' });
    const after = readText(pool, 'staging-web-config');
    assert.match(after, /^scsi0:0\.fileName = "\/vmfs\/volumes\/ds1\/sw\/sw-db\.vmdk"$/m);
    assert.match(after, /^scsi0:1\.fileName = "\/vmfs\/volumes\/ds1\/sw\/sw-root\.vmdk"$/m);
    assert.deepEqual(
      report.references.map((r) => [r.path, r.status]),
      [
        ['config.scsi0:0.fileName', 'mapped'],
        ['config.scsi0:1.fileName', 'mapped'],
      ],
    );
  });

  it("staging named production's vda member on no disk: vda maps production's path by role pairing", () => {
    const staging = STAGING_XML.replace("<source dev='/dev/vg0/sw-db'/>", "<source dev='/dev/vg0/scratch'/>");
    vm('prod-web', PROD_XML, PROD);
    vm('staging-web', staging, STAGING);
    pool.snapshot('prod-web', 'nightly');
    const report = sync();
    const after = readText(pool, 'staging-web-config');
    assert.ok(
      after.includes(disk('file', 'raw', "<source file='/var/lib/libvirt/images/sw-db.img'/>", 'vda')),
    );
    assert.equal(layout('staging-web')['libvirt.disk.vda'], 'D', "production's vda data");
    // vdb named a member of staging's on neither side as production's does: staging's own, as before.
    assert.ok(after.includes("<source dev='/dev/vg0/scratch'/>"));
    const vda = report.references.find((r) => r.path === 'config.libvirt.disk.vda.source');
    assert.equal(vda?.status, 'mapped');
    assert.match(vda?.via ?? '', /member disk1: pw-data → sw-db/);
  });

  it('the same wiring on both sides, and a sync of the config alone: every reference is kept as today', () => {
    const sameWiring = PROD_XML.replace('pw-data.img', 'PW0')
      .replace('pw-os.qcow2', 'pw-data.img')
      .replace('PW0', 'pw-os.qcow2');
    for (const [prod, members] of [
      [sameWiring, undefined],
      [PROD_XML, ['config']],
    ] as const) {
      pool.close();
      pool = Pool.create(path.join(tempDir('snapsync-wiring-'), 'pool'), { blockSize: 4096 });
      vm('prod-web', prod, PROD);
      vm('staging-web', STAGING_XML, STAGING);
      pool.snapshot('prod-web', 'nightly');
      const report = sync(members ? [...members] : undefined);
      assert.deepEqual(
        report.references.filter((r) => r.status !== 'kept'),
        [],
        'nothing mapped or removed',
      );
      const after = readText(pool, 'staging-web-config');
      assert.ok(
        after.includes(
          disk('file', 'qcow2', "<source file='/var/lib/libvirt/images/sw-root.qcow2'/>", 'vda'),
        ),
      );
      assert.ok(after.includes(disk('block', 'raw', "<source dev='/dev/vg0/sw-db'/>", 'vdb')));
    }
  });
});
