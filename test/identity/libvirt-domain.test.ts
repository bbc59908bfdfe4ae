/**
 * A libvirt domain's own identity and references beyond its disks and networks, synced through a real
 * pool (`sync staging-app prod-app@nightly`): a NIC's VLAN and switch port, the SMBIOS system UUID and
 * serial, the security label, host devices; and the safety net for identity values left anywhere else.
 * Each result is checked with virt-xml-validate and by reading the XML a user would read.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { createIdentityHooks, type IdentityReport, type ReferenceOptions } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { addConfig, readText } from './helpers/pool';
import { run } from './helpers/tools';

const PROD_UUID = 'c0ffee00-1234-4567-89ab-0000000000a2';
const STG_UUID = '57a90000-1234-4567-89ab-0000000000b1';

interface Domain {
  name: string;
  uuid: string;
  /** Lines inside <domain> before <os> (sysinfo, description…). */
  head?: string;
  /** Lines inside <devices> after the disk. */
  devices?: string;
  /** Lines at the end of <domain> (seclabel). */
  tail?: string;
}

const domain = (d: Domain) => `<domain type='kvm'>
  <name>${d.name}</name>
  <uuid>${d.uuid}</uuid>
  <memory unit='KiB'>2097152</memory>
${d.head ?? ''}  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/${d.name}-disk0.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
${d.devices ?? ''}  </devices>
${d.tail ?? ''}</domain>
`;

const nic = (mac: string, extra: string) => `    <interface type='bridge'>
      <mac address='${mac}'/>
      <source bridge='br-ovs'/>
${extra}      <model type='virtio'/>
    </interface>
`;
const vlan = (id: number) => `      <vlan>
        <tag id='${id}'/>
      </vlan>
`;
const ovsPort = (id: string) => `      <virtualport type='openvswitch'>
        <parameters interfaceid='${id}'/>
      </virtualport>
`;
const PROD_PORT = '0d3f7a2c-6b1e-4c55-9e0f-000000000001';
const STG_PORT = '7e1d0c2a-6b1e-4c55-9e0f-5ea600000001';

describe('identity: a libvirt domain is staging’s own after a sync', function () {
  this.timeout(120_000);
  let pool: Pool;
  let dir: string;
  beforeEach(() => {
    dir = tempDir('snapsync-libvirt-domain-');
    pool = Pool.create(path.join(dir, 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  function vm(name: string, xml: string): void {
    pool.createContainer({ name, type: 'vm' });
    addConfig(pool, name, 'config', xml);
    pool.createContainer({ name: `${name}-disk0`, type: 'vdisk', size: 64 * 1024 });
    pool.addMember(name, 'disk0', `${name}-disk0`);
  }
  /** Syncs staging-app from prod-app@nightly; returns the report and staging's config as a user reads it. */
  function sync(prod: string, staging: string, options: ReferenceOptions = {}) {
    vm('prod-app', prod);
    vm('staging-app', staging);
    pool.snapshot('prod-app', 'nightly');
    const report = pool.sync('staging-app', 'prod-app@nightly', {
      hooks: createIdentityHooks('default', options),
    }).identity as IdentityReport;
    const xml = readText(pool, 'staging-app-config');
    const file = path.join(dir, 'synced.xml');
    fs.writeFileSync(file, xml);
    run('virt-xml-validate', [file, 'domain']);
    return { report, xml };
  }
  const reference = (report: IdentityReport, p: string) => report.references.find((r) => r.path === p);

  describe('a NIC’s VLAN and switch port are references', () => {
    it("staging's NIC keeps its own VLAN tag and Open vSwitch interface-id, reported as kept", () => {
      const { report, xml } = sync(
        domain({
          name: 'prod-app',
          uuid: PROD_UUID,
          devices: nic('52:54:00:02:00:01', vlan(100) + ovsPort(PROD_PORT)),
        }),
        domain({
          name: 'staging-app',
          uuid: STG_UUID,
          devices: nic('52:54:00:b1:00:01', vlan(200) + ovsPort(STG_PORT)),
        }),
      );
      assert.match(xml, /<tag id='200'\/>/);
      assert.doesNotMatch(xml, /<tag id='100'\/>/);
      assert.ok(xml.includes(STG_PORT) && !xml.includes(PROD_PORT), 'the interface-id is staging’s');
      assert.deepEqual(
        [
          reference(report, 'config.libvirt.interface0.vlan'),
          reference(report, 'config.libvirt.interface0.virtualport'),
        ].map((r) => [r?.status, r?.value, r?.sourceValue]),
        [
          ['kept', 'tag.id=200', 'tag.id=100'],
          [
            'kept',
            'type=openvswitch parameters.interfaceid=' + STG_PORT,
            'type=openvswitch parameters.interfaceid=' + PROD_PORT,
          ],
        ],
      );
    });

    it("a staging NIC without a VLAN or port loses production's (removed)", () => {
      const { report, xml } = sync(
        domain({
          name: 'prod-app',
          uuid: PROD_UUID,
          devices: nic('52:54:00:02:00:01', vlan(100) + ovsPort(PROD_PORT)),
        }),
        domain({ name: 'staging-app', uuid: STG_UUID, devices: nic('52:54:00:b1:00:01', '') }),
      );
      assert.doesNotMatch(xml, /<vlan>|<virtualport/);
      assert.equal(reference(report, 'config.libvirt.interface0.vlan')?.status, 'removed');
      assert.equal(reference(report, 'config.libvirt.interface0.virtualport')?.status, 'removed');
    });

    it("production's NIC without a VLAN or port gets staging's own written back into it", () => {
      const staging = domain({
        name: 'staging-app',
        uuid: STG_UUID,
        devices: nic('52:54:00:b1:00:01', vlan(200) + ovsPort(STG_PORT)),
      });
      const { report, xml } = sync(
        domain({ name: 'prod-app', uuid: PROD_UUID, devices: nic('52:54:00:02:00:01', '') }),
        staging,
      );
      // Written back whole, indented as the NIC's other elements (libvirt reads them in any order).
      assert.ok(xml.includes(vlan(200)) && xml.includes(ovsPort(STG_PORT)), xml);
      assert.equal(xml.length, staging.length, 'nothing else changed');
      assert.equal(reference(report, 'config.libvirt.interface0.vlan')?.status, 'kept');
      assert.deepEqual(report.warnings, []);
    });

    it("a NIC only production has is refused until its VLAN and port are mapped; 802.1Qbh's profileid too", () => {
      const qbh = `      <virtualport type='802.1Qbh'>
        <parameters profileid='prod-finance'/>
      </virtualport>
`;
      const prod = domain({
        name: 'prod-app',
        uuid: PROD_UUID,
        devices: nic('52:54:00:02:00:01', '') + nic('52:54:00:02:00:02', vlan(100) + qbh),
      });
      const staging = domain({ name: 'staging-app', uuid: STG_UUID, devices: nic('52:54:00:b1:00:01', '') });
      vm('prod-app', prod);
      vm('staging-app', staging);
      pool.snapshot('prod-app', 'nightly');
      const hooks = (referenceMap: Record<string, string>) => ({
        hooks: createIdentityHooks('default', { referenceMap }),
      });
      assert.throws(
        () => pool.sync('staging-app', 'prod-app@nightly', hooks({})),
        (err: { code: string; details: { references: Array<{ path: string; unmapped: string[] }> } }) => {
          assert.equal(err.code, 'IDENTITY_REFERENCE_UNMAPPED');
          assert.deepEqual(
            err.details.references.map((r) => [r.path, r.unmapped]),
            [
              ['config.libvirt.interface1.vlan', ['100']],
              ['config.libvirt.interface1.virtualport', ['prod-finance']],
            ],
          );
          return true;
        },
      );
      assert.equal(readText(pool, 'staging-app-config'), staging, 'nothing changed');
      const report = pool.sync(
        'staging-app',
        'prod-app@nightly',
        hooks({ '100': '200', 'prod-finance': 'staging-finance' }),
      ).identity as IdentityReport;
      const xml = readText(pool, 'staging-app-config');
      assert.match(xml, /<tag id='200'\/>/);
      assert.match(xml, /profileid='staging-finance'/);
      assert.equal(reference(report, 'config.libvirt.interface1.vlan')?.status, 'mapped');
    });
  });

  describe('SMBIOS and the security label are staging’s', () => {
    const sysinfo = (entries: Record<string, string>, chassis?: string) => `  <sysinfo type='smbios'>
    <system>
${Object.entries(entries)
  .map(([k, v]) => `      <entry name='${k}'>${v}</entry>\n`)
  .join('')}    </system>
${chassis ? `    <chassis>\n      <entry name='serial'>${chassis}</entry>\n    </chassis>\n` : ''}  </sysinfo>
`;
    const seclabel = (label: string) => `  <seclabel type='dynamic' model='apparmor' relabel='yes'>
    <label>${label}</label>
    <imagelabel>${label}</imagelabel>
  </seclabel>
`;
    const field = (report: IdentityReport, p: string) => report.fields.find((f) => f.path === p);

    it("staging's own SMBIOS uuid and serial are restored; production's seclabel is taken out", () => {
      const { report, xml } = sync(
        domain({
          name: 'prod-app',
          uuid: PROD_UUID,
          head: sysinfo({ manufacturer: 'ACME', uuid: PROD_UUID, serial: PROD_UUID }),
          tail: seclabel(`libvirt-${PROD_UUID}`),
        }),
        domain({
          name: 'staging-app',
          uuid: STG_UUID,
          head: sysinfo({ manufacturer: 'ACME', uuid: STG_UUID, serial: 'STG-SERIAL-0001' }),
        }),
      );
      assert.ok(!xml.toLowerCase().includes(PROD_UUID), 'production’s UUID is nowhere');
      assert.match(xml, new RegExp(`<entry name='uuid'>${STG_UUID}</entry>`));
      assert.match(xml, /<entry name='serial'>STG-SERIAL-0001<\/entry>/);
      assert.doesNotMatch(xml, /<seclabel/);
      assert.deepEqual(
        ['uuid', 'serial'].map((n) => field(report, `config.libvirt.sysinfo.system.${n}`)?.status),
        ['restored', 'restored'],
      );
      assert.equal(reference(report, 'config.libvirt.seclabel0')?.status, 'removed');
    });

    it("a staging domain without SMBIOS gets its own <uuid> as system uuid and Nova's serial; another serial is fresh", () => {
      const { report, xml } = sync(
        domain({
          name: 'prod-app',
          uuid: PROD_UUID,
          head: sysinfo({ uuid: PROD_UUID, serial: PROD_UUID.toUpperCase() }, 'PROD-CHASSIS-0001'),
        }),
        domain({ name: 'staging-app', uuid: STG_UUID, tail: seclabel(`libvirt-${STG_UUID}`) }),
      );
      assert.ok(!xml.toLowerCase().includes(PROD_UUID), 'production’s UUID is nowhere');
      assert.match(xml, new RegExp(`<entry name='uuid'>${STG_UUID}</entry>`));
      assert.match(xml, new RegExp(`<entry name='serial'>${STG_UUID}</entry>`));
      const chassis = /<chassis>\s*<entry name='serial'>([^<]*)</.exec(xml)?.[1];
      assert.match(chassis ?? '', /^[A-Z]{4}-[A-Z]{7}-\d{4}$/, xml);
      assert.notEqual(chassis, 'PROD-CHASSIS-0001');
      assert.ok(xml.includes(seclabel(`libvirt-${STG_UUID}`)), "staging's seclabel is written back whole");
      assert.deepEqual(
        ['system.uuid', 'system.serial', 'chassis.serial'].map((n) => {
          const f = field(report, `config.libvirt.sysinfo.${n}`);
          return [f?.status, f?.value];
        }),
        [
          ['generated', STG_UUID],
          ['generated', STG_UUID],
          ['generated', chassis],
        ],
      );
    });
  });

  describe('the safety net: an identity value the restore replaced, left anywhere else', () => {
    const description = (text: string) => `  <description>${text}</description>\n`;
    const refused = (err: {
      code: string;
      details: { found: Array<{ path: string; name: string; line: number }> };
    }) => err.code === 'IDENTITY_SOURCE_REFERENCE' && err.details.found;

    for (const [what, head, line] of [
      ["production's UUID in a <description>", description(`cloned from ${PROD_UUID}`), 5],
      [
        "production's UUID without dashes, upper case",
        description(`vm ${PROD_UUID.replace(/-/g, '').toUpperCase()}`),
        5,
      ],
      ["production's MAC in a <description>", description('primary NIC 52-54-00-02-00-01'), 5],
      [
        "production's UUID in a <sysinfo> entry no profile reads",
        `  <sysinfo type='smbios'>\n    <system>\n      <entry name='sku'>${PROD_UUID}</entry>\n    </system>\n  </sysinfo>\n`,
        7,
      ],
    ] as const) {
      it(`${what} refuses the sync with IDENTITY_SOURCE_REFERENCE; nothing changes`, () => {
        const staging = domain({
          name: 'staging-app',
          uuid: STG_UUID,
          devices: nic('52:54:00:b1:00:01', ''),
        });
        vm(
          'prod-app',
          domain({ name: 'prod-app', uuid: PROD_UUID, head, devices: nic('52:54:00:02:00:01', '') }),
        );
        vm('staging-app', staging);
        pool.snapshot('prod-app', 'nightly');
        assert.throws(
          () => pool.sync('staging-app', 'prod-app@nightly', { hooks: createIdentityHooks('default') }),
          (err: Parameters<typeof refused>[0]) => {
            const found = refused(err);
            assert.ok(found, `${err.code}`);
            assert.deepEqual(
              found.map((f) => [f.path, f.line]),
              [['config', line]],
            );
            return true;
          },
        );
        assert.equal(readText(pool, 'staging-app-config'), staging, 'nothing changed');
        assert.equal(pool.read('staging-app-disk0', 0, 1)[0], 0, "staging's disk is its own");
      });
    }

    it('allowSourceReferences (--allow-source-reference) naming the value lets the sync through with a warning', () => {
      const { report, xml } = sync(
        domain({ name: 'prod-app', uuid: PROD_UUID, head: description(`cloned from ${PROD_UUID}`) }),
        domain({ name: 'staging-app', uuid: STG_UUID }),
        { allowSourceReferences: [PROD_UUID] },
      );
      assert.ok(xml.includes(`cloned from ${PROD_UUID}`));
      assert.deepEqual(
        report.warnings.map((w) => [w.path, w.code]),
        [['config', 'IDENTITY_SOURCE_REFERENCE']],
      );
    });
  });

  it("staging's own CD-ROM naming the production VM, indented otherwise than production's, is kept (no false refusal)", () => {
    const cdrom = (indent: string, iso: string) =>
      [
        "<disk type='file' device='cdrom'>",
        "  <driver name='qemu' type='raw'/>",
        `  <source file='/var/lib/libvirt/iso/${iso}'/>`,
        "  <target dev='sda' bus='sata'/>",
        '  <readonly/>',
        '</disk>',
      ]
        .map((l) => `${indent}${l}\n`)
        .join('');
    const { report, xml } = sync(
      domain({ name: 'prod-app', uuid: PROD_UUID, devices: cdrom('    ', 'ubuntu-22.04.iso') }),
      domain({ name: 'staging-app', uuid: STG_UUID, devices: cdrom('      ', 'prod-app-tools.iso') }),
    );
    assert.match(xml, /^ {6}<source file='\/var\/lib\/libvirt\/iso\/prod-app-tools.iso'\/>$/m);
    assert.equal(reference(report, 'config.libvirt.disk.sda.source')?.status, 'kept');
    assert.deepEqual(report.warnings, []);
  });

  describe("host devices are the host's: production's never reach staging", () => {
    const pci = (bus: string) => `    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        <address domain='0x0000' bus='${bus}' slot='0x00' function='0x0'/>
      </source>
    </hostdev>
`;
    const scsi = `    <hostdev mode='subsystem' type='scsi'>
      <source>
        <adapter name='scsi_host2'/>
        <address bus='0' target='0' unit='3'/>
      </source>
    </hostdev>
`;
    const vf = `    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:d3:00:02'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x3b' slot='0x02' function='0x1'/>
      </source>
    </interface>
`;

    it("production's <hostdev>s staging does not have are removed with a warning naming each", () => {
      const { report, xml } = sync(
        domain({ name: 'prod-app', uuid: PROD_UUID, devices: pci('0x81') + scsi }),
        domain({ name: 'staging-app', uuid: STG_UUID }),
      );
      assert.doesNotMatch(xml, /<hostdev/);
      assert.deepEqual(
        report.warnings.map((w) => [w.path, w.code, /pci=0000:81:00\.0|scsi_host2/.test(w.message)]),
        [
          ['config.libvirt.hostdev0', 'IDENTITY_SOURCE_REMOVED', true],
          ['config.libvirt.hostdev1', 'IDENTITY_SOURCE_REMOVED', true],
        ],
      );
      assert.equal(reference(report, 'config.libvirt.hostdev0')?.status, 'removed');
    });

    it("staging's own <hostdev>s are kept, also where production has fewer", () => {
      const { report, xml } = sync(
        domain({ name: 'prod-app', uuid: PROD_UUID, devices: pci('0x81') }),
        domain({ name: 'staging-app', uuid: STG_UUID, devices: pci('0x82') + pci('0x83') }),
      );
      assert.ok(xml.includes(pci('0x82') + pci('0x83')), xml);
      assert.doesNotMatch(xml, /0x81/);
      assert.deepEqual(
        [0, 1].map((n) => reference(report, `config.libvirt.hostdev${n}`)?.status),
        ['kept', 'kept'],
      );
      assert.deepEqual(report.warnings, []);
    });

    it("a hostdev NIC (SR-IOV VF) only production has is refused until its PCI address is mapped to staging's", () => {
      const staging = domain({ name: 'staging-app', uuid: STG_UUID });
      vm('prod-app', domain({ name: 'prod-app', uuid: PROD_UUID, devices: vf }));
      vm('staging-app', staging);
      pool.snapshot('prod-app', 'nightly');
      const attempt = (referenceMap: Record<string, string>) => () =>
        pool.sync('staging-app', 'prod-app@nightly', {
          hooks: createIdentityHooks('default', { referenceMap }),
        });
      for (const referenceMap of [{}, { '0000:3b:02.1': 'eth0' }] as Array<Record<string, string>>) {
        assert.throws(
          attempt(referenceMap),
          (err: { code: string; details: { references: Array<{ path: string; unmapped: string[] }> } }) => {
            assert.equal(err.code, 'IDENTITY_REFERENCE_UNMAPPED');
            assert.deepEqual(
              err.details.references.map((r) => [r.path, r.unmapped]),
              [['config.libvirt.interface0.source', ['0000:3b:02.1']]],
            );
            return true;
          },
        );
        assert.equal(readText(pool, 'staging-app-config'), staging, 'nothing changed');
      }
      const report = attempt({ '0000:3b:02.1': '0000:5e:10.1' })().identity as IdentityReport;
      assert.deepEqual(
        [reference(report, 'config.libvirt.interface0.source')].map((r) => [
          r?.status,
          r?.value,
          r?.sourceValue,
        ]),
        [['mapped', 'address.pci=0000:5e:10.1', 'address.pci=0000:3b:02.1']],
      );
      const xml = readText(pool, 'staging-app-config');
      assert.match(xml, /<address type='pci' domain='0x0000' bus='0x5e' slot='0x10' function='0x1'\/>/);
      assert.doesNotMatch(xml, /0x3b/);
      const file = path.join(dir, 'synced.xml');
      fs.writeFileSync(file, xml);
      run('virt-xml-validate', [file, 'domain']);
    });
  });

  describe("a display's fixed port is the host's", () => {
    const vnc = (attrs: string) => `    <graphics type='vnc' ${attrs} listen='127.0.0.1'/>\n`;

    it("staging without a <graphics> of its own does not get production's fixed VNC port: it is taken out (libvirt picks a free one), reported removed", () => {
      const { report, xml } = sync(
        domain({ name: 'prod-app', uuid: PROD_UUID, devices: vnc("port='5912' autoport='no'") }),
        domain({ name: 'staging-app', uuid: STG_UUID }),
      );
      assert.ok(xml.includes("<graphics type='vnc' listen='127.0.0.1'/>"), xml);
      assert.doesNotMatch(xml, /5912|autoport='no'/);
      assert.deepEqual(
        ['port', 'autoport'].map((p) => {
          const r = reference(report, `config.libvirt.graphics0.${p}`);
          return [r?.status, r?.sourceValue];
        }),
        [
          ['removed', '5912'],
          ['removed', 'no'],
        ],
      );
    });

    it("staging's own fixed port is kept", () => {
      const { xml } = sync(
        domain({ name: 'prod-app', uuid: PROD_UUID, devices: vnc("port='5912' autoport='no'") }),
        domain({ name: 'staging-app', uuid: STG_UUID, devices: vnc("port='5930' autoport='no'") }),
      );
      assert.ok(xml.includes(vnc("port='5930' autoport='no'")), xml);
    });
  });
});
