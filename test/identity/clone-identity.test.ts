/**
 * A clone of a VM (or of a disk with a label) gets an identity of its own:
 * `clone prod-app@golden dev-1` must not give dev-1 production's MACs, BIOS
 * UUID, disk GUIDs, disks or networks. Through a real pool with the identity
 * hooks the agent runs, on the fixture configs (test/fixtures/identity) and
 * real GPT images, checked by parsing the clone's bytes.
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
import { addConfig, exportImage, importImage, readText } from './helpers/pool';
import { gpt512, run } from './helpers/tools';

const fixture = (name: string) =>
  fs.readFileSync(path.join(__dirname, '../fixtures/identity/references', name), 'utf8');

/** Every value a config holds (identity fields and references): path → value. */
function valuesOf(text: string): Map<string, string> {
  const parsed = parseConfig(detectFormat(text)!, text);
  assert.ok(parsed.ok);
  return new Map(parsed.spans.map((s) => [s.field, s.value.value]));
}

/** Production's references and names, each mapped to dev-1's own (what an operator gives with --map). */
const PROD_APP_MAP: Record<string, string> = {
  'prod-app-01': 'dev-1',
  'prod-app-01.example.internal': 'dev-1.example.internal',
  'prod-app-01.nvram': 'dev-1.nvram',
  'prod-app-01.vmxf': 'dev-1.vmxf',
  'prod-app-01.scoreboard': 'dev-1.scoreboard',
  'prod-app-01-3d1b6f.hlog': 'dev-1.hlog',
  '/vmfs/volumes/ds-prod/prod-app-01/prod-app-01-3d1b6f.vswp': '/vmfs/volumes/ds-dev/dev-1/dev-1.vswp',
  '/vmfs/volumes/ds-prod/prod-app-01/prod-app-01.vmdk': '/vmfs/volumes/ds-dev/dev-1/dev-1.vmdk',
  '/vmfs/volumes/ds-prod/prod-app-01/prod-app-01_1.vmdk': '/vmfs/volumes/ds-dev/dev-1/dev-1_1.vmdk',
  '/vmfs/volumes/iso-prod/ubuntu-22.04.4-live-server-amd64.iso':
    '/vmfs/volumes/iso-dev/ubuntu-22.04.4-live-server-amd64.iso',
  'prod-frontend': 'dev-frontend',
  '50 2b 8f 11 9a 0c 4e 21-b3 6d 70 1f 2a 9e 44 01': '50 2b 8f 11 9a 0c 4e 21-b3 6d 70 1f 2a 9e 44 99',
  'dvportgroup-1001': 'dvportgroup-3003',
  '17': '18',
  '/vmfs/volumes/ds-prod/prod-app-01/serial0.log': '/vmfs/volumes/ds-dev/dev-1/serial0.log',
};

/** A golden VM whose config names its disks by their container names (bare .vmdk files next to the .vmx). */
const GOLDEN_VMX = [
  '.encoding = "UTF-8"',
  'displayName = "web"',
  'scsi0:0.deviceType = "scsi-hardDisk"',
  'scsi0:0.fileName = "golden-web-disk0.vmdk"',
  'scsi0:1.deviceType = "scsi-hardDisk"',
  'scsi0:1.fileName = "golden-web-disk1.vmdk"',
  'ethernet0.networkName = "build-net"',
  'ethernet0.addressType = "generated"',
  'ethernet0.generatedAddress = "00:0c:29:4a:7b:01"',
  'uuid.bios = "56 4d 8e 21 0c 3a 9f 11-4b 77 2a 10 c3 e9 01 aa"',
  '',
].join('\n');

/** Production's domain as `virsh dumpxml` gives it: its NBD disk, a tap name and a passthrough device. */
const PROD_WEB_XML = `<domain type='kvm' id='12'>
  <name>prod-web</name>
  <uuid>6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b</uuid>
  <memory unit='KiB'>1048576</memory>
  <os>
    <type arch='x86_64'>hvm</type>
  </os>
  <devices>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='nbd' name='prod-web-disk0'>
        <host transport='unix' socket='/run/snapsync/nbd.sock'/>
      </source>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:a1:b2:c3'/>
      <source bridge='ovsbr-prod'/>
      <target dev='vnet12'/>
      <model type='virtio'/>
    </interface>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        <address domain='0x0000' bus='0x81' slot='0x00' function='0x0'/>
      </source>
    </hostdev>
  </devices>
</domain>
`;

const PROD_DISK = '5E1C0A11-7B2D-4C3E-9F40-A1B2C3D4E5F6';
const PROD_PART = '0D15EA5E-1234-4ABC-8DEF-00112233AA01';

describe('identity: a clone gets an identity of its own', function () {
  this.timeout(120_000);
  let pool: Pool;
  let dir: string;
  beforeEach(() => {
    dir = tempDir('snapsync-clone-identity-');
    pool = Pool.create(path.join(dir, 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  function vm(name: string, config: string, disks: string[]): void {
    pool.createContainer({ name, type: 'vm' });
    addConfig(pool, name, 'config', config);
    for (const disk of disks) {
      pool.createContainer({ name: `${name}-${disk}`, type: 'vdisk', size: 64 * 1024 });
      pool.write(`${name}-${disk}`, 0, Buffer.alloc(4096, disk));
      pool.addMember(name, disk, `${name}-${disk}`);
    }
  }
  const clone = (source: string, name: string, options: ReferenceOptions = {}) =>
    pool.clone(source, name, { hooks: createIdentityHooks('default', options) });

  it("a VM clone of production is refused (IDENTITY_REFERENCE_UNMAPPED) while its config would point at production's disks and networks; nothing is created", () => {
    vm('prod-app', fixture('prod-app.vmx'), ['disk1']);
    pool.snapshot('prod-app', 'golden');
    assert.throws(
      () => clone('prod-app@golden', 'dev-1'),
      (err: { code: string; message: string; details: { references: Array<{ path: string }> } }) => {
        assert.equal(err.code, 'IDENTITY_REFERENCE_UNMAPPED');
        assert.match(err.message, /^clone of "dev-1" refused/);
        const paths = err.details.references.map((r) => r.path);
        for (const p of [
          'config.scsi0:0.fileName',
          'config.ethernet0.networkName',
          'config.serial0.fileName',
        ])
          assert.ok(paths.includes(p), p);
        return true;
      },
    );
    assert.deepEqual(
      pool.listContainers().map((c) => c.name),
      ['prod-app', 'prod-app-config', 'prod-app-disk1'],
      'all or nothing: no dev-1',
    );
  });

  it("mapped (--map), the clone has fresh MACs (same OUI) and UUIDs, dev-1's names, and nothing of production's", () => {
    vm('prod-app', fixture('prod-app.vmx'), ['disk1']);
    pool.snapshot('prod-app', 'golden');
    const made = clone('prod-app@golden', 'dev-1', { referenceMap: PROD_APP_MAP });
    const report = made.identity as IdentityReport;
    const prod = valuesOf(fixture('prod-app.vmx'));
    const text = readText(pool, 'dev-1-config');
    const dev = valuesOf(text);
    assert.equal(readText(pool, 'prod-app-config'), fixture('prod-app.vmx'), 'production untouched');
    for (const field of ['ethernet0.generatedAddress', 'ethernet1.address']) {
      assert.notEqual(dev.get(field), prod.get(field), field);
      assert.equal(dev.get(field)!.slice(0, 8), prod.get(field)!.slice(0, 8), `${field} keeps its OUI`);
    }
    for (const field of ['uuid.bios', 'uuid.location', 'vc.uuid'])
      assert.notEqual(dev.get(field), prod.get(field), field);
    assert.equal(dev.get('uuid.bios'), dev.get('uuid.location'), 'one source value, one fresh value');
    assert.equal(dev.get('displayName'), 'dev-1');
    assert.equal(dev.get('scsi0:0.fileName'), '/vmfs/volumes/ds-dev/dev-1/dev-1.vmdk');
    assert.equal(dev.get('ethernet0.networkName'), 'dev-frontend');
    assert.ok(!/prod/.test(text), `no "prod" left:\n${text}`);
    assert.deepEqual(
      report.fields.find((f) => f.path === 'config.uuid.bios'),
      {
        path: 'config.uuid.bios',
        value: dev.get('uuid.bios'),
        status: 'generated',
        sourceValue: prod.get('uuid.bios'),
      },
    );
    // Seeded by the clone's UUID: another clone gets other values.
    const other = valuesOf(
      readText(pool, `${clone('prod-app@golden', 'dev-2', { referenceMap: PROD_APP_MAP }).name}-config`),
    );
    assert.notEqual(other.get('ethernet0.generatedAddress'), dev.get('ethernet0.generatedAddress'));
  });

  it("references to the source's members are rewired to the clone's members by role; a name that cannot be invented is warned about", () => {
    vm('golden-web', GOLDEN_VMX, ['disk0', 'disk1']);
    pool.snapshot('golden-web', 'v3');
    assert.throws(
      () => clone('golden-web@v3', 'dev-1'),
      (err: { code: string; details: { references: Array<{ path: string }> } }) => {
        assert.equal(err.code, 'IDENTITY_REFERENCE_UNMAPPED');
        assert.deepEqual(
          err.details.references.map((r) => r.path),
          ['config.ethernet0.networkName'],
          'only the network: the disks are members',
        );
        return true;
      },
    );
    const made = clone('golden-web@v3', 'dev-1', { referenceMap: { 'build-net': 'dev-net' } });
    const dev = valuesOf(readText(pool, 'dev-1-config'));
    assert.equal(dev.get('scsi0:0.fileName'), 'dev-1-disk0.vmdk');
    assert.equal(dev.get('scsi0:1.fileName'), 'dev-1-disk1.vmdk');
    assert.equal(dev.get('ethernet0.networkName'), 'dev-net');
    assert.equal(pool.read('dev-1-disk1', 0, 5).toString(), 'disk1', "the data is the snapshot's");
    const report = made.identity as IdentityReport;
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      [['config.displayName', 'IDENTITY_FROM_SOURCE']],
    );
    assert.match(
      report.references.find((r) => r.path === 'config.scsi0:1.fileName')?.via ?? '',
      /member disk1: golden-web-disk1 → dev-1-disk1/,
    );
  });

  it('the safety net: a config still naming the source VM outside its identity fields is refused (IDENTITY_SOURCE_REFERENCE) unless allowed', () => {
    vm('golden-web', GOLDEN_VMX.replace('displayName = "web"', 'annotation = "built from golden-web"'), [
      'disk0',
      'disk1',
    ]);
    pool.snapshot('golden-web', 'v3');
    const map = { 'build-net': 'dev-net' };
    assert.throws(
      () => clone('golden-web@v3', 'dev-1', { referenceMap: map }),
      (err: { code: string; message: string }) =>
        err.code === 'IDENTITY_SOURCE_REFERENCE' &&
        /clone of "dev-1" refused/.test(err.message) &&
        /--map SRC=DST/.test(err.message),
    );
    assert.equal(pool.listContainers().filter((c) => c.name.startsWith('dev-1')).length, 0);
    const allowed = clone('golden-web@v3', 'dev-1', {
      referenceMap: map,
      allowSourceReferences: ['golden-web'],
    });
    assert.ok(
      (allowed.identity as IdentityReport).warnings.some((w) => w.code === 'IDENTITY_SOURCE_REFERENCE'),
    );
  });

  it("without a map, a clone's domain name that is the source VM's takes the clone's, and a NoCloud instance-id equal to the domain UUID gets the same fresh UUID", () => {
    const uuid = '33333333-aaaa-4bbb-8ccc-000000000003';
    vm(
      'prod-k8s',
      `<domain type='kvm'>\n  <name>prod-k8s</name>\n  <uuid>${uuid}</uuid>\n  <memory>1048576</memory>\n  <os><type>hvm</type></os>\n</domain>\n`,
      [],
    );
    addConfig(pool, 'prod-k8s', 'meta', `instance-id: ${uuid}\nlocal-hostname: prod-k8s-node-1\n`);
    pool.snapshot('prod-k8s', 'golden');
    const report = clone('prod-k8s@golden', 'dev-k8s').identity as IdentityReport;
    const xml = readText(pool, 'dev-k8s-config');
    const fresh = /<uuid>([^<]+)<\/uuid>/.exec(xml)![1]!;
    assert.notEqual(fresh, uuid);
    assert.match(xml, /<name>dev-k8s<\/name>/);
    assert.equal(readText(pool, 'dev-k8s-meta'), `instance-id: ${fresh}\nlocal-hostname: dev-k8s-node-1\n`);
    assert.deepEqual(
      ['config.libvirt.name', 'meta.cloudinit.instance-id', 'meta.cloudinit.local-hostname'].map((p) => {
        const f = report.fields.find((x) => x.path === p);
        return [f?.status, f?.sourceValue];
      }),
      [
        ['mapped', 'prod-k8s'],
        ['generated', uuid],
        ['mapped', 'prod-k8s-node-1'],
      ],
    );
    assert.deepEqual(report.warnings, []);
  });

  it("without hooks (keepIdentity) the clone is the snapshot's exact copy, identity null", () => {
    vm('prod-app', fixture('prod-app.vmx'), ['disk1']);
    pool.snapshot('prod-app', 'golden');
    const made = pool.clone('prod-app@golden', 'copy');
    assert.equal(made.identity, null);
    assert.equal(readText(pool, 'copy-config'), fixture('prod-app.vmx'));
  });

  it('a GPT disk clone gets a fresh disk GUID (sgdisk reads it); a disk without identity stays unchanged, writing nothing', () => {
    const image = gpt512(path.join(dir, 'prod.img'), 16, PROD_DISK, PROD_PART, 'prod');
    importImage(pool, 'prod-disk', image.file);
    pool.snapshot('prod-disk', 'golden');
    const made = clone('prod-disk@golden', 'dev-disk');
    const report = made.identity as IdentityReport;
    const guid = report.fields.find((f) => f.path === 'gpt.diskGuid');
    assert.equal(guid?.status, 'generated');
    assert.equal(guid?.sourceValue, PROD_DISK);
    exportImage(pool, 'dev-disk', path.join(dir, 'dev.img'));
    const printed = run('sgdisk', ['-v', '-p', path.join(dir, 'dev.img')]).stdout;
    assert.match(printed, new RegExp(`Disk identifier \\(GUID\\): ${guid!.value}`));
    assert.match(printed, /No problems found/);
    assert.notEqual(guid!.value, PROD_DISK);

    pool.createContainer({ name: 'plain', type: 'vdisk', size: 1024 * 1024 });
    pool.write('plain', 8192, Buffer.alloc(4096, 'x'));
    pool.snapshot('plain', 's');
    const plain = clone('plain@s', 'plain-copy');
    assert.equal((plain.identity as IdentityReport).blocksWritten, 0);
    assert.equal(pool.usage('plain-copy').exclusiveBytes, 0, 'every block shared with the snapshot');
    assert.deepEqual(pool.read('plain-copy', 0, 1024 * 1024), pool.read('plain', 0, 1024 * 1024));
  });

  describe("a clone of a libvirt domain (virsh dumpxml) is handled as a sync into a target with none of production's host devices", () => {
    const validate = (xml: string) => {
      const file = path.join(dir, 'clone.xml');
      fs.writeFileSync(file, xml);
      run('virt-xml-validate', [file, 'domain']);
    };

    it("production's <hostdev>, tap name and NBD socket need no --map: the hostdev and tap name are taken out (IDENTITY_SOURCE_REMOVED), the socket kept; libvirt accepts the result", () => {
      vm('prod-web', PROD_WEB_XML, ['disk0']);
      pool.snapshot('prod-web', 'golden');
      const made = clone('prod-web@golden', 'dev-1', {
        referenceMap: { 'prod-web': 'dev-1', 'ovsbr-prod': 'ovsbr-dev' },
      });
      const report = made.identity as IdentityReport;
      const xml = readText(pool, 'dev-1-config');
      assert.doesNotMatch(xml, /<hostdev|vnet12/);
      assert.match(xml, /<source protocol='nbd' name='dev-1-disk0'>/);
      assert.match(xml, /<host transport='unix' socket='\/run\/snapsync\/nbd.sock'\/>/);
      assert.deepEqual(
        report.warnings.filter((w) => w.code !== 'IDENTITY_FROM_SOURCE').map((w) => [w.path, w.code]),
        [['config.libvirt.hostdev0', 'IDENTITY_SOURCE_REMOVED']],
      );
      assert.deepEqual(
        ['config.libvirt.hostdev0', 'config.libvirt.interface0.target'].map(
          (p) => report.references.find((r) => r.path === p)?.status,
        ),
        ['removed', 'removed'],
      );
      validate(xml);
    });

    it("a <hostdev> mapped with --map to another PCI address keeps libvirt's form (no type='pci' in its <source>'s <address>) and validates", () => {
      vm('prod-web', PROD_WEB_XML, ['disk0']);
      pool.snapshot('prod-web', 'golden');
      clone('prod-web@golden', 'dev-1', {
        referenceMap: { 'prod-web': 'dev-1', 'ovsbr-prod': 'ovsbr-dev', '0000:81:00.0': '0000:82:00.0' },
      });
      const xml = readText(pool, 'dev-1-config');
      assert.match(xml, /<address domain='0x0000' bus='0x82' slot='0x00' function='0x0'\/>/);
      assert.doesNotMatch(xml, /0x81/);
      validate(xml);
    });
  });
});
