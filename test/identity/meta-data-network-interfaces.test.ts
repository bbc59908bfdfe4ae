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
  /** For a second sync in one test. */
  const newPool = () => {
    pool.close();
    pool = Pool.create(path.join(tempDir('snapsync-eni-'), 'pool'), { blockSize: 4096 });
  };

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

    newPool();
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
  /** A second sync, in a pool of its own. */
  const syncEniAgain = (staging: string, production: string) => {
    newPool();
    return syncEni(staging, production);
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
      ['seed.cloudinit.network-interfaces.1.vlan-raw-device', 'IDENTITY_FROM_SOURCE'],
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

  it('stanzas pair by interface name where both sides name it, else in order', () => {
    const stanza = (name: string, address: string) => [
      `auto ${name}`,
      `iface ${name} inet static`,
      `  address ${address}`,
    ];
    const { report, text } = syncEni(
      seed('stage', [
        ...stanza('eth0', '10.30.0.10/24'),
        ...stanza('eth1', '10.31.0.11/24'),
        ...stanza('eth7', '10.37.0.17/24'),
      ]),
      seed('prod', [
        ...stanza('eth1', '10.21.0.11/24'),
        ...stanza('eth5', '10.25.0.15/24'),
        ...stanza('eth0', '10.20.0.10/24'),
      ]),
    );
    // production's stanza order and names; eth0 and eth1 pair by name, eth5 (production's) with eth7 (staging's)
    assert.equal(
      text,
      `${[...stanza('eth1', '10.31.0.11/24'), ...stanza('eth5', '10.37.0.17/24'), ...stanza('eth0', '10.30.0.10/24')].join('\n')}\n`,
    );
    assert.deepEqual(report.warnings, []);
  });

  it("a VLAN's raw device (vlan-raw-device, or eth1 of eth1.900) is staging's, like its tag", () => {
    const { report, text } = syncEni(
      seed('stage', ['auto eth1.900', 'iface eth1.900 inet static', '  address 10.190.9.9/24']),
      seed('prod', [
        'auto vlan100',
        'iface vlan100 inet static',
        '  vlan-raw-device eth0',
        '  address 10.100.9.9/24',
      ]),
    );
    assert.equal(
      text,
      'auto vlan900\niface vlan900 inet static\n  vlan-raw-device eth1\n  address 10.190.9.9/24\n',
    );
    assert.deepEqual(field(report, 'seed.cloudinit.network-interfaces.0.vlan-raw-device'), [
      'restored',
      'eth1',
      'eth0',
    ]);
    const back = syncEniAgain(
      seed('stage', ['auto vlan900', 'iface vlan900 inet static', '  vlan-raw-device eth1']),
      seed('prod', ['auto eth0.100', 'iface eth0.100 inet dhcp']),
    );
    assert.equal(back.text, 'auto eth1.900\niface eth1.900 inet dhcp\n');
  });

  /**
   * A meta-data whose network-interfaces is written in a YAML style as PyYAML's emitter writes it
   * (double-quoted escapes and `\` line breaks, single-quoted and folded line folding, at 40
   * columns so that lines wrap), or plain (each ENI line after an empty one: a plain scalar folds
   * one line break into a space). Plain and single-quoted ENI lines are not indented (a line's
   * indentation after a fold is not text, so PyYAML would not write them single-quoted).
   */
  const inStyle = (style: string, host: string, indented: string[]): string => {
    const lines = style === 'plain' || style === "'" ? indented.map((l) => l.trim()) : indented;
    if (style === 'plain') return `instance-id: iid-${host}\nnetwork-interfaces: ${lines.join('\n\n  ')}\n`;
    const script = [
      'import sys, yaml',
      'class S(str): pass',
      'yaml.add_representer(S, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style=sys.argv[1]))',
      'doc = {"instance-id": "iid-" + sys.argv[2], "network-interfaces": S(sys.stdin.read())}',
      'print(yaml.dump(doc, width=40, sort_keys=False), end="")',
    ].join('\n');
    return run('python3', ['-c', script, style, host], `${lines.join('\n')}\n`).stdout;
  };

  for (const [production, staging] of [
    ['"', '|'], // the outside tester's case
    ["'", 'plain'],
    ['>', "'"],
    ['plain', '"'],
    ['|', '>'], // staging's folded was only warned about
  ]) {
    it(`production's network-interfaces ${production}, staging's ${staging}: staging's addresses and MAC, in production's style`, () => {
      const productionText = inStyle(production!, 'ci02', eni([PRODUCTION], 9000));
      const { report, text } = syncSeeds(inStyle(staging!, 'stg-ci2', eni([STAGING], 1500)), productionText);
      // What cloud-init reads: production's text and options with staging's values (in production's style).
      assert.equal(
        networkInterfaces(text),
        networkInterfaces(inStyle(production!, 'x', eni([STAGING], 9000))),
        text,
      );
      assert.deepEqual(report.warnings, []);
      assert.deepEqual(
        report.fields.filter((f) => f.status === 'restored').map((f) => f.path.replace(/.*\./, '')),
        ['instance-id', 'address', 'netmask', 'gateway', 'hwaddress', 'dns-nameservers'],
      );
      assert.equal(
        /^network-interfaces: (.)/m.exec(text)?.[1],
        /^network-interfaces: (.)/m.exec(productionText)?.[1],
        "written in production's style",
      );
      for (const value of [PRODUCTION.address, PRODUCTION.mac, PRODUCTION.gateway, PRODUCTION.dns])
        assert.ok(!new RegExp(`${value!.replace(/\./g, '\\.')}\\b`).test(text), `${value} in\n${text}`);
    });
  }

  it("a value production's plain network-interfaces cannot hold (`::` at a line's end): warned about, the YAML stays valid", () => {
    const stanza = (n: number, network: string) => [
      'iface eth0 inet6 static',
      `  address 2001:db8:${n}::9/64`,
      `  network ${network}`,
    ];
    const { report, text } = syncSeeds(
      inStyle('|', 'stg-ci2', stanza(30, '2001:db8:30::')),
      inStyle('plain', 'ci02', stanza(20, '2001:db8:20::0')),
    );
    assert.equal(
      networkInterfaces(text),
      'iface eth0 inet6 static\naddress 2001:db8:30::9/64\nnetwork 2001:db8:20::0',
    );
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      [['seed.cloudinit.network-interfaces.inet6.0.network', 'IDENTITY_UNPARSABLE']],
    );
  });

  it("production's network-interfaces with a !!str tag and an &anchor: read, staging's values written", () => {
    const production = metaData('ci02', [PRODUCTION], 9000).replace(
      'network-interfaces: |',
      'network-interfaces: &eni !!str\n  |',
    );
    const { report, text } = syncSeeds(metaData('stg-ci2', [STAGING], 1500), production);
    assert.equal(networkInterfaces(text), `${eni([STAGING], 9000).join('\n')}\n`, text);
    assert.deepEqual(report.warnings, []);
  });

  it("production's network-interfaces that is no scalar (an alias): the sync is refused, staging keeps its own", () => {
    const production = `eni: &eni "auto eth0\\niface eth0 inet dhcp\\n  hwaddress ether ${PRODUCTION.mac}\\n"\ninstance-id: iid-ci02\nnetwork-interfaces: *eni\n`;
    const staging = metaData('stg-ci2', [STAGING], 1500);
    assert.throws(() => syncSeeds(staging, production), {
      code: 'IDENTITY_REFERENCE_UNMAPPED',
      message: /cloudinit\.network-interfaces: network-interfaces cannot be read as ENI text/,
    });
    assert.equal(readText(pool, 'green-seed'), staging);

    // An empty one (YAML's null) is no network at all: nothing of production's to refuse.
    newPool();
    const empty = syncSeeds(staging, 'instance-id: iid-ci02\nnetwork-interfaces:\n# none\n');
    assert.equal(empty.text, 'instance-id: iid-stg-ci2\nnetwork-interfaces:\n# none\n');
  });
});
