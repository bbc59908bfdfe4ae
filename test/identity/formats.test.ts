/**
 * The profiles one by one, on the inputs real files contain: CRLF, comments,
 * quoting and escapes, look-alike elements, broken labels. Each test runs a
 * simulated sync (capture, source content in place, restore) on a view over
 * memory, and checks what a user would: the bytes and the report.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32, guidFromString, guidToString, isGuid, parseConfig } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { simulateSync } from './helpers/memory-view';
import { gpt512, run } from './helpers/tools';

const text = (b: Buffer) => b.toString('utf8');
const syncText = (
  target: string,
  source: string,
  preserve?: Parameters<typeof simulateSync>[3],
  labels?: Record<string, string>,
) => {
  const r = simulateSync('file', Buffer.from(target), Buffer.from(source), preserve, labels);
  return { report: r.report, out: text(r.data), blocks: r.view.blocksWritten() };
};
const value = (report: { fields: Array<{ path: string; value: string; status: string }> }, p: string) =>
  report.fields.find((f) => f.path === p);

describe('identity: CRC32 and GUIDs', () => {
  after(cleanupTempDirs);

  it('CRC32 is the zlib/UEFI one', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32(Buffer.alloc(0)), 0);
    assert.equal(crc32(Buffer.alloc(32)), 0x190a55ad);
  });

  it('GUIDs are mixed-endian on disk, exactly where sgdisk puts them', () => {
    const dir = tempDir();
    const guid = '00112233-4455-6677-8899-AABBCCDDEEFF';
    gpt512(path.join(dir, 'd.img'), 8, guid, '0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'x');
    const onDisk = fs.readFileSync(path.join(dir, 'd.img')).subarray(512 + 56, 512 + 72);
    assert.equal(onDisk.toString('hex'), '33221100554477668899aabbccddeeff');
    assert.equal(guidToString(onDisk), guid);
    assert.ok(guidFromString(guid.toLowerCase()).equals(onDisk));
    assert.ok(isGuid(guid) && !isGuid('not-a-guid'));
    assert.throws(() => guidFromString('0011'), { name: 'SnapsyncError', code: 'INVALID_ARGUMENT' });
  });
});

describe('identity: vmx', () => {
  const vmx = (lines: string[], eol = '\n') =>
    ['.encoding = "UTF-8"', 'config.version = "8"', ...lines, ''].join(eol);

  it('CRLF lines, any key case, comments: only the values change, the line endings stay', () => {
    const source = vmx(
      [
        'DisplayName = "prod"   # the name',
        'ethernet0.GeneratedAddress = "00:0c:29:00:00:01"',
        'memSize = "4096"',
      ],
      '\r\n',
    );
    const target = vmx(['displayname = "stg"', 'ethernet0.generatedaddress = "00:0c:29:00:00:02"'], '\r\n');
    const { report, out } = syncText(target, source);
    assert.equal(
      out,
      vmx(
        [
          'DisplayName = "stg"   # the name',
          'ethernet0.GeneratedAddress = "00:0c:29:00:00:02"',
          'memSize = "4096"',
        ],
        '\r\n',
      ),
    );
    assert.deepEqual(value(report, 'displayName'), {
      path: 'displayName',
      value: 'stg',
      status: 'restored',
      sourceValue: 'prod',
    });
    assert.equal(value(report, 'ethernet0.generatedAddress')?.value, '00:0c:29:00:00:02');
  });

  it('|XX escapes are decoded for the report and written back as the target had them', () => {
    const { report, out } = syncText(
      vmx(['displayName = "web |22blue|22 |7C stg"']),
      vmx(['displayName = "prod"']),
    );
    assert.equal(value(report, 'displayName')?.value, 'web "blue" | stg');
    assert.equal(out, vmx(['displayName = "web |22blue|22 |7C stg"']));
  });

  it('a key written twice: the last one counts, every occurrence gets the target value', () => {
    const { report, out } = syncText(
      vmx(['uuid.bios = "aa"']),
      vmx(['uuid.bios = "p1"', 'x = "1"', 'uuid.bios = "p2"']),
    );
    assert.deepEqual(value(report, 'uuid.bios'), {
      path: 'uuid.bios',
      value: 'aa',
      status: 'restored',
      sourceValue: 'p2',
    });
    assert.equal(out, vmx(['uuid.bios = "aa"', 'x = "1"', 'uuid.bios = "aa"']));
  });

  it('an identity line that is not key = "value" is a warning and is left alone', () => {
    const source = vmx(['displayName = prod-unquoted']);
    const { report, out } = syncText(vmx(['displayName = "stg"']), source);
    assert.equal(out, source);
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      [['displayName', 'IDENTITY_UNPARSABLE']],
    );
  });
});

describe('identity: libvirt domain XML', () => {
  const domain = (name: string, uuid: string, macs: string[], extra = '') =>
    `<?xml version="1.0"?>\n<!-- <name>commented</name> -->\n<domain type="kvm">\n  <metadata><x:app xmlns:x="urn:x"><name>app-name</name><uuid>meta</uuid></x:app></metadata>\n  <name>${name}</name>\n  <uuid>${uuid}</uuid>\n  <cpu><model>host</model></cpu>\n  <devices>\n${macs
      .map((m) => `    <interface type="network">\n      <mac address=${m}/>\n    </interface>\n`)
      .join(
        '',
      )}    <!-- <interface><mac address='00:00:00:00:00:00'/></interface> -->\n${extra}  </devices>\n</domain>\n`;

  it("takes the domain's own <name>/<uuid> and the interfaces' MACs, not look-alikes in metadata or comments", () => {
    const parsed = parseConfig(
      'libvirt',
      domain('a&amp;b', 'u1', ["'52:54:00:00:00:01'", '"52:54:00:00:00:02"']),
    );
    assert.ok(parsed.ok);
    assert.deepEqual(
      parsed.spans.filter((s) => !s.reference).map((s) => [s.field, s.value.value]),
      [
        ['libvirt.name', 'a&b'],
        ['libvirt.uuid', 'u1'],
        ['libvirt.interface0.mac', '52:54:00:00:00:01'],
        ['libvirt.interface1.mac', '52:54:00:00:00:02'],
      ],
    );
  });

  it('rewrites only the values, each escaped for where it goes', () => {
    const target = domain('stg &amp; co', 'u-stg', ['"52:54:00:aa:00:01"', "'52:54:00:aa:00:02'"]);
    const source = domain('prod', 'u-prod', ["'52:54:00:00:00:01'", '"52:54:00:00:00:02"'], '    <disk/>\n');
    const { report, out } = syncText(target, source);
    assert.equal(
      out,
      domain('stg &amp; co', 'u-stg', ["'52:54:00:aa:00:01'", '"52:54:00:aa:00:02"'], '    <disk/>\n'),
    );
    assert.equal(value(report, 'libvirt.name')?.value, 'stg & co');
    assert.equal(report.fields.filter((f) => f.status === 'restored').length, 4);
  });

  it('malformed synced XML refuses the sync: its references cannot be checked', () => {
    const source = domain('prod', 'u', ["'52:54:00:00:00:01'"]).replace('</cpu>', '');
    assert.throws(() => syncText(domain('stg', 'v', ["'52:54:00:00:00:09'"]), source), {
      code: 'IDENTITY_REFERENCE_UNMAPPED',
      message: /libvirt: <\/domain> at offset \d+ closes nothing open/,
    });
  });
});

describe('identity: libvirt references', () => {
  it("a one-line domain and a pretty-printed one: the target's <source> fits the synced file's layout", () => {
    const oneLine = (file: string, net: string) =>
      `<domain type='kvm'><name>x</name><devices><disk type='file' device='disk'><source file='${file}'/><target dev='vda' bus='virtio'/></disk><interface type='network'><source network='${net}'/></interface></devices></domain>\n`;
    const pretty = (file: string, net: string) =>
      `<domain type='kvm'>\n  <name>x</name>\n  <devices>\n    <disk type='file' device='disk'>\n        <source file='${file}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n    <interface type='network'>\n      <source network='${net}'/>\n    </interface>\n  </devices>\n</domain>\n`;
    assert.equal(
      syncText(pretty('/stg.qcow2', 'stg-net'), oneLine('/prod.qcow2', 'prod-net')).out,
      oneLine('/stg.qcow2', 'stg-net'),
    );
    assert.equal(
      syncText(oneLine('/stg.qcow2', 'stg-net'), pretty('/prod.qcow2', 'prod-net')).out,
      pretty('/stg.qcow2', 'stg-net'),
    );
  });
});

describe('identity: cloud-init network-config', () => {
  it("v1: the target's names, MACs, addresses and gateways; everything else the source's", () => {
    const v1 = (name: string, mac: string, net: string, mtu: number, nl = '\n') =>
      [
        '# network-config v1',
        'version: 1',
        'config:',
        '  - type: physical',
        `    name: ${name}`,
        `    mac_address: '${mac}'`,
        `    mtu: ${mtu}`,
        '    subnets:',
        '      - type: static',
        `        address: ${net}.10/24   # the VM's own`,
        `        gateway: ${net}.1`,
        '  - type: nameserver',
        `    address: [${net}.2]`,
        '',
      ].join(nl);
    const { report, out } = syncText(
      v1('eth0', '52:54:00:aa:00:01', '10.30.0', 1500),
      v1('ens3', '52:54:00:bb:00:01', '10.20.0', 9000, '\r\n'),
    );
    assert.equal(out, v1('eth0', '52:54:00:aa:00:01', '10.30.0', 9000, '\r\n'));
    assert.deepEqual(
      report.fields.filter((f) => f.status === 'restored').map((f) => f.path),
      [
        'netcfg.config.0.name',
        'netcfg.config.0.mac_address',
        'netcfg.config.0.subnets.0.address',
        'netcfg.config.0.subnets.0.gateway',
        'netcfg.config.1.address.0',
      ],
    );
  });
});

describe('identity: cloud-init meta-data', () => {
  it('plain, quoted and commented scalars; nested keys are not the instance-id', () => {
    const source =
      '# seed\ninstance-id: \'iid-prod\'  # set by CI\r\nnetwork:\n  instance-id: nested\nlocal-hostname: "prod"\n';
    const target = 'instance-id: iid-stg\nlocal-hostname: stg.example\n';
    const { report, out } = syncText(target, source);
    assert.equal(
      out,
      '# seed\ninstance-id: iid-stg  # set by CI\r\nnetwork:\n  instance-id: nested\nlocal-hostname: stg.example\n',
    );
    assert.deepEqual(value(report, 'cloudinit.instance-id'), {
      path: 'cloudinit.instance-id',
      value: 'iid-stg',
      status: 'restored',
      sourceValue: 'iid-prod',
    });
  });

  it("the target's own scalar, quotes and escapes included, replaces the source's", () => {
    const { out, report } = syncText(
      'instance-id: \'iid: #1\'\nlocal-hostname: "x\\ty"\n',
      'instance-id: iid-prod\nlocal-hostname: prod\n',
    );
    assert.equal(value(report, 'cloudinit.local-hostname')?.value, 'x\ty');
    assert.equal(out, 'instance-id: \'iid: #1\'\nlocal-hostname: "x\\ty"\n');
    const { out: out2 } = syncText('instance-id: "007"\n', 'instance-id: iid-prod\n');
    assert.equal(out2, 'instance-id: "007"\n', 'quotes kept: a plain 007 would read as a number');
  });

  it("a block scalar of one line is the target's in its place; one of more lines is not rewritten: a warning", () => {
    assert.equal(
      syncText('instance-id: iid-stg\n', 'instance-id: |\n  iid-prod\n').out,
      'instance-id: |\n  iid-stg\n',
    );
    const source = 'instance-id: |\n  iid-prod\n  -2\n';
    const { report, out } = syncText('instance-id: iid-stg\n', source);
    assert.equal(out, source);
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      [['cloudinit.instance-id', 'IDENTITY_UNPARSABLE']],
    );
  });

  it('a declared format is parsed as declared', () => {
    const { report } = syncText('instance-id: a\n', 'instance-id: b\n', 'default', {
      'snapsync.io/config-format': 'vmx',
    });
    assert.deepEqual(
      report.fields.filter((f) => f.status === 'restored'),
      [],
    );
  });
});

describe('identity: MBR', () => {
  it('a filesystem boot sector (FAT32) ends with 55 AA too, but has no disk signature to keep', () => {
    const sector = (oem: string, sig: number) => {
      const b = Buffer.alloc(1024);
      b.set([0xeb, 0x58, 0x90], 0);
      b.write(oem, 3, 'latin1');
      b.write('FAT32   ', 82, 'latin1');
      b.writeUInt32LE(sig, 440);
      b[510] = 0x55;
      b[511] = 0xaa;
      return b;
    };
    const r = simulateSync('vdisk', sector('mkfs.fat', 0x11111111), sector('mkfs.fat', 0x22222222));
    assert.deepEqual(
      r.report.fields.map((f) => f.path),
      ['name', 'uuid'],
    );
    assert.deepEqual(r.report.warnings, []);
    assert.equal(r.view.blocksWritten(), 0);
  });

  it('real sfdisk output: the signature is the label-id', () => {
    const dir = tempDir();
    const file = path.join(dir, 'm.img');
    fs.writeFileSync(file, Buffer.alloc(1024 * 1024));
    run('sfdisk', ['-q', file], 'label: dos\nlabel-id: 0x0badf00d\n,,83\n');
    const r = simulateSync('vdisk', fs.readFileSync(file), Buffer.alloc(1024 * 1024), ['mbr.signature']);
    assert.deepEqual(
      r.report.warnings.map((w) => [w.path, w.code]),
      [['mbr.signature', 'IDENTITY_FIELD_MISSING']],
    );
    assert.match(r.report.warnings[0]!.message, /0badf00d/);
  });
});
