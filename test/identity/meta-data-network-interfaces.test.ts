/**
 * A NoCloud meta-data's `network-interfaces: |` block (Debian ENI text, which
 * cloud-init renders as the VM's network) after a whole-VM sync in a real
 * pool: staging's own addresses, gateway, MAC and DNS, production's other
 * options; an interface only production has gets a fresh MAC and its address
 * is mapped or warned about.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { createIdentityHooks, type IdentityReport, type ReferenceOptions } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { addConfig, readText } from './helpers/pool';
import { run } from './helpers/tools';

/** The block as cloud-init reads it: PyYAML's safe_load of the meta-data. */
const networkInterfaces = (text: string): string =>
  JSON.parse(
    run(
      'python3',
      [
        '-c',
        'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())["network-interfaces"]))',
      ],
      text,
    ).stdout,
  );

interface Iface {
  name: string;
  address: string;
  netmask?: string;
  gateway?: string;
  mac: string;
  dns?: string;
}

const eni = (ifaces: Iface[], mtu: number) =>
  ifaces.flatMap((i) => [
    `auto ${i.name}`,
    `iface ${i.name} inet static`,
    `  address ${i.address}`,
    ...(i.netmask ? [`  netmask ${i.netmask}`] : []),
    ...(i.gateway ? [`  gateway ${i.gateway}`] : []),
    `  hwaddress ether ${i.mac}`,
    ...(i.dns ? [`  dns-nameservers ${i.dns}`] : []),
    `  mtu ${mtu}`,
  ]);

const metaData = (host: string, ifaces: Iface[], mtu: number) =>
  [
    `instance-id: iid-${host}`,
    `local-hostname: ${host}`,
    'network-interfaces: |',
    ...eni(ifaces, mtu).map((l) => `  ${l}`),
    '',
  ].join('\n');

const STAGING: Iface = {
  name: 'eth0',
  address: '10.30.0.22',
  netmask: '255.255.255.0',
  gateway: '10.30.0.1',
  mac: '52:54:00:5e:00:02',
  dns: '10.30.0.2 10.30.0.3',
};
const PRODUCTION: Iface = {
  name: 'eth0',
  address: '10.20.0.12',
  netmask: '255.255.0.0',
  gateway: '10.20.0.1',
  mac: '52:54:00:c2:00:01',
  dns: '10.20.0.2',
};
const PRODUCTION_ADDED: Iface = { name: 'eth1', address: '10.21.0.12/24', mac: '52:54:00:c2:00:02' };

describe('identity: NoCloud meta-data network-interfaces (ENI) is the target’s', function () {
  this.timeout(60_000);
  after(cleanupTempDirs);
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(path.join(tempDir('snapsync-eni-'), 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());

  // production is `blue`, staging `green`; each a whole meta-data
  const syncSeeds = (staging: string, production: string, options: ReferenceOptions = {}) => {
    for (const [name, text] of [
      ['blue', production],
      ['green', staging],
    ] as const) {
      pool.createContainer({ name, type: 'vm' });
      addConfig(pool, name, 'seed', text);
    }
    pool.snapshot('blue', 'nightly');
    const report = pool.sync('green', 'blue@nightly', { hooks: createIdentityHooks('default', options) })
      .identity as IdentityReport;
    return { report, text: readText(pool, 'green-seed') };
  };
  const sync = (staging: Iface[], production: Iface[], options: ReferenceOptions = {}) =>
    syncSeeds(metaData('stg-ci2', staging, 1500), metaData('ci02', production, 9000), options);
  const field = (report: IdentityReport, p: string) => {
    const f = report.fields.find((x) => x.path === p);
    return f && [f.status, f.value, f.sourceValue];
  };

  it("staging's address, netmask, gateway, MAC and DNS; production's other options", () => {
    const { report, text } = sync([STAGING], [PRODUCTION]);
    assert.equal(networkInterfaces(text), `${eni([STAGING], 9000).join('\n')}\n`, text);
    const restored = report.fields.filter((f) => f.status === 'restored').map((f) => f.path);
    for (const option of ['address', 'netmask', 'gateway', 'hwaddress', 'dns-nameservers'])
      assert.ok(restored.includes(`seed.cloudinit.network-interfaces.0.${option}`), restored.join(' '));
    assert.deepEqual(report.warnings, []);
  });

  it('an interface only production has: a fresh MAC; its address mapped, or warned about', () => {
    const warned = sync([STAGING], [PRODUCTION, PRODUCTION_ADDED]);
    assert.deepEqual(
      warned.report.warnings.map((w) => [w.path, w.code]),
      [['seed.cloudinit.network-interfaces.1.address', 'IDENTITY_FROM_SOURCE']],
    );
    const mac = field(warned.report, 'seed.cloudinit.network-interfaces.1.hwaddress');
    assert.equal(mac?.[0], 'generated');
    assert.match(String(mac?.[1]), /^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
    assert.ok(!warned.text.includes(PRODUCTION_ADDED.mac), 'no production MAC left');

    pool.close();
    pool = Pool.create(path.join(tempDir('snapsync-eni-'), 'pool'), { blockSize: 4096 });
    const mapped = sync([STAGING], [PRODUCTION, PRODUCTION_ADDED], {
      referenceMap: { '10.21.0.12/24': '10.31.0.22/24' },
    });
    assert.deepEqual(mapped.report.warnings, []);
    assert.deepEqual(field(mapped.report, 'seed.cloudinit.network-interfaces.1.address'), [
      'mapped',
      '10.31.0.22/24',
      '10.21.0.12/24',
    ]);
    assert.ok(networkInterfaces(mapped.text).includes('iface eth1 inet static\n  address 10.31.0.22/24\n'));
  });

  // The outside tester's case: production has an inet6 stanza and a VLAN sub-interface, staging another VLAN.
  const seed = (host: string, lines: string[]) =>
    ['instance-id: iid-' + host, 'network-interfaces: |', ...lines.map((l) => `  ${l}`), ''].join('\n');
  const syncEni = (staging: string, production: string) => {
    const { report, text } = syncSeeds(staging, production);
    return { report, text: networkInterfaces(text) };
  };
  const PROD_DUAL_STACK_VLAN = seed('prod', [
    'auto eth0',
    'iface eth0 inet static',
    '  address 10.20.9.9/24',
    'iface eth0 inet6 static',
    '  address 2001:db8:20::9/64',
    '  gateway 2001:db8:20::1',
    'auto eth0.100',
    'iface eth0.100 inet static',
    '  vlan-raw-device eth0',
    '  address 10.100.9.9/24',
  ]);

  it('stanzas pair within their address family: no IPv4 address in an inet6 stanza', () => {
    const { report, text } = syncEni(
      seed('stage', ['auto eth0', 'iface eth0 inet static', '  address 10.30.9.9/24']),
      PROD_DUAL_STACK_VLAN,
    );
    assert.ok(text.includes('iface eth0 inet static\n  address 10.30.9.9/24\n'), text);
    assert.ok(text.includes('iface eth0 inet6 static\n  address 2001:db8:20::9/64\n'), text);
    assert.deepEqual(field(report, 'seed.cloudinit.network-interfaces.0.address'), [
      'restored',
      '10.30.9.9/24',
      '10.20.9.9/24',
    ]);
    // production's IPv6 address, its VLAN and that VLAN's address: the target had none, so each is warned about
    assert.deepEqual(report.warnings.map((w) => [w.path, w.code]).sort(), [
      ['seed.cloudinit.network-interfaces.1.address', 'IDENTITY_FROM_SOURCE'],
      ['seed.cloudinit.network-interfaces.1.vlan', 'IDENTITY_FROM_SOURCE'],
      ['seed.cloudinit.network-interfaces.inet6.0.address', 'IDENTITY_FROM_SOURCE'],
      ['seed.cloudinit.network-interfaces.inet6.0.gateway', 'IDENTITY_FROM_SOURCE'],
    ]);
  });

  it("a VLAN sub-interface keeps staging's VLAN tag and address, not production's", () => {
    const { report, text } = syncEni(
      seed('stage', [
        'auto eth0',
        'iface eth0 inet static',
        '  address 10.30.9.9/24',
        'auto eth0.900',
        'iface eth0.900 inet static',
        '  vlan-raw-device eth0',
        '  address 10.190.9.9/24',
      ]),
      PROD_DUAL_STACK_VLAN,
    );
    assert.ok(
      text.includes(
        'auto eth0.900\niface eth0.900 inet static\n  vlan-raw-device eth0\n  address 10.190.9.9/24\n',
      ),
      text,
    );
    assert.ok(!text.includes('eth0.100') && !text.includes('10.100.9.9'), text);
    assert.ok(text.includes('iface eth0 inet6 static\n  address 2001:db8:20::9/64\n'), text);
    assert.deepEqual(field(report, 'seed.cloudinit.network-interfaces.1.vlan'), ['restored', '900', '100']);
    assert.deepEqual(report.warnings.map((w) => w.path).sort(), [
      'seed.cloudinit.network-interfaces.inet6.0.address',
      'seed.cloudinit.network-interfaces.inet6.0.gateway',
    ]);
  });

  it('a folded network-interfaces (not ENI text line for line) cannot be kept: warned about', () => {
    pool.createContainer({ name: 'green', type: 'vm' });
    addConfig(
      pool,
      'green',
      'seed',
      metaData('x', [STAGING], 1500).replace('network-interfaces: |', 'network-interfaces: >'),
    );
    pool.createContainer({ name: 'blue', type: 'vm' });
    addConfig(pool, 'blue', 'seed', metaData('ci02', [PRODUCTION], 9000));
    pool.snapshot('blue', 'nightly');
    const report = pool.sync('green', 'blue@nightly', { hooks: createIdentityHooks() })
      .identity as IdentityReport;
    const warnings = report.warnings.map((w) => [w.path, w.code]);
    assert.deepEqual(warnings[0], ['seed.cloudinit.network-interfaces', 'IDENTITY_UNPARSABLE']);
    assert.ok(
      warnings.some(
        ([p, c]) => p === 'seed.cloudinit.network-interfaces.0.address' && c === 'IDENTITY_FROM_SOURCE',
      ),
    );
  });
});
