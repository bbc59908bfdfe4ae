/**
 * A cloud-init network-config's lists (addresses, DNS servers and search
 * domains) after a whole-VM sync in a real pool: staging's own whatever YAML
 * style (flow `[…]` or block `- …`) and length either side writes them in,
 * whether a block list is indented or at its key's own indentation, and what
 * cloud-init's own YAML loader (PyYAML) reads back is staging's.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { createIdentityHooks, type IdentityReport, type Preserve } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { addConfig, readText } from './helpers/pool';
import { run } from './helpers/tools';

/** What cloud-init reads: PyYAML's safe_load, as JSON. */
const loadYaml = <T>(text: string): T =>
  JSON.parse(
    run('python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], text)
      .stdout,
  );

interface Netplan {
  network: {
    ethernets: Record<
      string,
      {
        addresses: string[];
        nameservers: { addresses: string[]; search: string[] };
        match: { macaddress: string };
        mtu: number;
      }
    >;
  };
}

type Style = 'flow' | 'block';
const list = (items: string[], style: Style, indent: string) =>
  style === 'flow' ? ` [${items.join(', ')}]` : ['', ...items.map((i) => `${indent}- ${i}`)].join('\n');

const v2 = (mac: string, addresses: string[], style: Style, dns: string[], search: string[]) =>
  [
    'network:',
    '  version: 2',
    '  ethernets:',
    '    ens3:',
    '      match:',
    `        macaddress: "${mac}"`,
    '      set-name: ens3',
    `      addresses:${list(addresses, style, '        ')}`,
    '      nameservers:',
    `        addresses:${list(dns, style, '          ')}`,
    `        search:${list(search, style, '          ')}`,
    '      mtu: 9000',
    '',
  ].join('\n');

describe('identity: network-config lists are the target’s, whatever their style and length', function () {
  this.timeout(60_000);
  after(cleanupTempDirs);
  let pool: Pool;
  /** A pool of its own for each sync (a test that syncs twice closes the first). */
  const newPool = () => {
    pool = Pool.create(path.join(tempDir('snapsync-netcfg-lists-'), 'pool'), { blockSize: 4096 });
  };
  beforeEach(newPool);
  afterEach(() => pool.close());

  // production is `blue`, staging `green` (names a domain like prod.example would not hold)
  const syncNetcfg = (staging: string, production: string, preserve: Preserve = 'default') => {
    for (const [name, text] of [
      ['blue', production],
      ['green', staging],
    ] as const) {
      pool.createContainer({ name, type: 'vm' });
      addConfig(pool, name, 'netcfg', text);
    }
    pool.snapshot('blue', 'nightly');
    const report = pool.sync('green', 'blue@nightly', { hooks: createIdentityHooks(preserve) })
      .identity as IdentityReport;
    return { report, text: readText(pool, 'green-netcfg') };
  };

  const cases: Array<{ staging: [string[], Style]; production: [string[], Style] }> = [
    { staging: [['10.30.0.11/24'], 'flow'], production: [['10.20.0.11/24'], 'block'] },
    { staging: [['10.30.0.11/24'], 'block'], production: [['10.20.0.11/24'], 'flow'] },
    { staging: [['10.30.0.11/24', '"fd30::11/64"'], 'flow'], production: [['10.20.0.11/24'], 'block'] },
    { staging: [['10.30.0.11/24', "'fd30::11/64'"], 'block'], production: [['10.20.0.11/24'], 'flow'] },
    { staging: [['10.30.0.11/24'], 'flow'], production: [['10.20.0.11/24', 'fd20::11/64'], 'block'] },
    { staging: [['10.30.0.11/24'], 'block'], production: [['10.20.0.11/24', 'fd20::11/64'], 'flow'] },
    { staging: [['10.30.0.11/24', 'fd30::11/64'], 'block'], production: [['10.20.0.11/24'], 'block'] },
    { staging: [[], 'flow'], production: [['10.20.0.11/24'], 'block'] },
  ];
  for (const { staging, production } of cases) {
    it(`staging's ${staging[0].length} ${staging[1]} address(es) over production's ${production[0].length} ${production[1]}`, () => {
      const unquote = (items: string[]) => items.map((i) => i.replace(/^["']|["']$/g, ''));
      const { report, text } = syncNetcfg(
        v2('52:54:00:00:00:01', staging[0], staging[1], ['10.30.0.2'], ['stg.example']),
        v2('52:54:00:a1:b2:c3', production[0], production[1], ['10.20.0.2', '10.20.0.3'], ['prod.example']),
      );
      const ens3 = loadYaml<Netplan>(text).network.ethernets.ens3!;
      assert.deepEqual(ens3.addresses, unquote(staging[0]), text);
      assert.deepEqual(ens3.nameservers, { addresses: ['10.30.0.2'], search: ['stg.example'] }, text);
      assert.equal(ens3.match.macaddress, '52:54:00:00:00:01');
      assert.equal(ens3.mtu, 9000, "production's settings otherwise");
      assert.ok(!/10\.20\.0\.|fd20|prod\.example/.test(text), text);
      for (const quoted of staging[0].filter((i) => /^["']/.test(i))) assert.ok(text.includes(quoted), text);
      assert.deepEqual(report.warnings, []);
    });
  }

  it('reports items of lists of one length, in the synced style; lists whose lengths differ as the list', () => {
    const sync = (staging: string[]) =>
      syncNetcfg(
        v2('52:54:00:00:00:01', staging, 'flow', ['10.30.0.2'], ['stg.example']),
        v2('52:54:00:a1:b2:c3', ['10.20.0.11/24'], 'block', ['10.20.0.2'], ['prod.example']),
      );
    const restored = (report: IdentityReport) =>
      report.fields.filter((f) => f.status === 'restored').map((f) => [f.path, f.value, f.sourceValue]);
    const same = sync(['10.30.0.11/24']);
    assert.ok(same.text.includes('      addresses:\n        - 10.30.0.11/24\n'), same.text);
    assert.deepEqual(restored(same.report).slice(1, 3), [
      ['netcfg.netcfg.ethernets.0.addresses.0', '10.30.0.11/24', '10.20.0.11/24'],
      ['netcfg.netcfg.ethernets.0.nameservers.addresses.0', '10.30.0.2', '10.20.0.2'],
    ]);
    pool.close();
    newPool();
    const longer = sync(['10.30.0.11/24', '10.30.0.12/24']);
    assert.deepEqual(restored(longer.report)[0], [
      'netcfg.netcfg.ethernets.0.addresses',
      '[10.30.0.11/24, 10.30.0.12/24]',
      '[10.20.0.11/24]',
    ]);
  });

  it('v1 DNS: subnets’ dns_nameservers and dns_search, and nameserver entries’ address and search', () => {
    const v1 = (net: string, domain: string, style: Style) =>
      [
        'version: 1',
        'config:',
        '  - type: physical',
        '    name: eth0',
        '    subnets:',
        '      - type: static',
        `        address: ${net}.22/24`,
        `        dns_nameservers:${list([`${net}.2`, `${net}.3`], style, '          ')}`,
        `        dns_search:${list([domain], style, '          ')}`,
        '  - type: nameserver',
        `    address:${list([`${net}.2`], style, '      ')}`,
        `    search:${list([`'${domain}'`], style, '      ')}`,
        '',
      ].join('\n');
    for (const [staging, production] of [
      ['flow', 'block'],
      ['block', 'flow'],
    ] as const) {
      const { report, text } = syncNetcfg(
        v1('10.30.0', 'stg.example', staging),
        v1('10.20.0', 'prod.example', production),
      );
      const config = loadYaml<{ config: Array<Record<string, unknown>> }>(text).config;
      assert.deepEqual(
        config[0]!.subnets,
        [
          {
            type: 'static',
            address: '10.30.0.22/24',
            dns_nameservers: ['10.30.0.2', '10.30.0.3'],
            dns_search: ['stg.example'],
          },
        ],
        text,
      );
      assert.deepEqual(
        config[1],
        { type: 'nameserver', address: ['10.30.0.2'], search: ['stg.example'] },
        text,
      );
      assert.ok(text.includes("'stg.example'"), 'the quotes staging wrote');
      assert.deepEqual(report.warnings, []);
      pool.close();
      newPool();
    }
  });

  it('preserve naming a list keeps every item of it', () => {
    const { text } = syncNetcfg(
      v2('52:54:00:00:00:01', ['10.30.0.11/24'], 'flow', ['10.30.0.2'], ['stg.example']),
      v2('52:54:00:a1:b2:c3', ['10.20.0.11/24'], 'block', ['10.20.0.2'], ['prod.example']),
      ['netcfg.netcfg.ethernets.0.addresses'],
    );
    const ens3 = loadYaml<Netplan>(text).network.ethernets.ens3!;
    assert.deepEqual([ens3.addresses, ens3.nameservers.addresses], [['10.30.0.11/24'], ['10.20.0.2']], text);
  });

  // A block list at its key's own indentation (`addresses:` then `- 10.x`, `config:` then `- type: …`):
  // YAML's indentless sequence, as yamllint and Kubernetes write it.
  it('v2 addresses written `addresses:` / `- 10.x` at one indentation are staging’s after the sync', () => {
    const v2 = (net: string) =>
      [
        'network:',
        '  version: 2',
        '  ethernets:',
        '    ens3:',
        '      addresses:',
        `      - ${net}.1/24`,
        `      gateway4: ${net}.254`,
        '      nameservers:',
        '        addresses:',
        `        - ${net}.2`,
        '',
      ].join('\n');
    const { report, text } = syncNetcfg(v2('10.30.22'), v2('10.20.22'));
    const ens3 = loadYaml<{
      network: { ethernets: { ens3: { addresses: string[]; gateway4: string; nameservers: unknown } } };
    }>(text).network.ethernets.ens3;
    assert.deepEqual(ens3.addresses, ['10.30.22.1/24'], text);
    assert.deepEqual(ens3.nameservers, { addresses: ['10.30.22.2'] }, text);
    assert.equal(ens3.gateway4, '10.30.22.254');
    assert.ok(!text.includes('10.20.'), text);
    assert.deepEqual(report.warnings, []);
    assert.ok(report.fields.some((f) => f.path === 'netcfg.netcfg.ethernets.0.addresses.0'));
  });

  it('v1 `config:` list at column 0: each item numbered in order under config, two NICs keep their own MAC and IP', () => {
    const v1 = (mac: string, net: string) =>
      [
        'version: 1',
        'config:',
        '- type: physical',
        '  name: eth0',
        `  mac_address: "${mac}:01"`,
        '  subnets:',
        '  - type: static',
        `    address: ${net}.6/24`,
        '- type: physical',
        '  name: eth1',
        `  mac_address: "${mac}:02"`,
        '  subnets:',
        '  - type: static',
        `    address: ${net}.7/24`,
        '',
      ].join('\n');
    const { report, text } = syncNetcfg(v1('52:54:00:88:00', '10.31.7'), v1('52:54:00:77:00', '10.21.7'));
    const config = loadYaml<{ config: Array<{ mac_address: string; subnets: Array<{ address: string }> }> }>(
      text,
    ).config;
    assert.deepEqual(
      config.map((c) => [c.mac_address, c.subnets[0]!.address]),
      [
        ['52:54:00:88:00:01', '10.31.7.6/24'],
        ['52:54:00:88:00:02', '10.31.7.7/24'],
      ],
      text,
    );
    const paths = report.fields.map((f) => f.path);
    assert.ok(paths.includes('netcfg.netcfg.config.1.subnets.0.address'), paths.join('\n'));
    assert.ok(paths.includes('netcfg.netcfg.config.0.mac_address'), paths.join('\n'));
    assert.equal(new Set(paths).size, paths.length, 'no two fields share a path');
    assert.deepEqual(report.warnings, []);
  });

  it('v2 vlans: staging’s VLAN tag and link, and bond and bridge members naming staging’s interfaces', () => {
    const netplan = (nic: string, bond: string, vlan: number, bridge: string, net: string) =>
      [
        'network:',
        '  version: 2',
        '  ethernets:',
        `    ${nic}1: {}`,
        `    ${nic}2: {}`,
        '  bonds:',
        `    ${bond}:`,
        `      interfaces: [${nic}1, ${nic}2]`,
        '  vlans:',
        `    ${bond}.${vlan}:`,
        `      id: ${vlan}`,
        `      link: ${bond}`,
        `      addresses: [${net}.5/24]`,
        `    ${bond}.${vlan + 1}: {id: ${vlan + 1}, link: ${bond}}`,
        '  bridges:',
        `    ${bridge}:`,
        '      interfaces:',
        `      - ${bond}.${vlan}`,
        '',
      ].join('\n');
    const { report, text } = syncNetcfg(
      netplan('ens', 'bond1', 900, 'br-stage', '10.190.0'),
      netplan('eno', 'bond0', 100, 'br-prod', '10.100.0'),
    );
    interface Net {
      network: {
        ethernets: Record<string, unknown>;
        bonds: Record<string, { interfaces: string[] }>;
        vlans: Record<string, { id: number; link: string }>;
        bridges: Record<string, { interfaces: string[] }>;
      };
    }
    const net = loadYaml<Net>(text).network;
    assert.deepEqual(
      net.vlans,
      {
        'bond1.900': { id: 900, link: 'bond1', addresses: ['10.190.0.5/24'] },
        'bond1.901': { id: 901, link: 'bond1' },
      },
      text,
    );
    assert.deepEqual(net.bonds, { bond1: { interfaces: ['ens1', 'ens2'] } }, text);
    assert.deepEqual(net.bridges, { 'br-stage': { interfaces: ['bond1.900'] } }, text);
    // What netplan checks: every interface a bond, bridge or VLAN names is one the file defines.
    const defined = new Set(Object.values(net).flatMap((group) => Object.keys(group)));
    const named = [
      ...Object.values(net.bonds).flatMap((b) => b.interfaces),
      ...Object.values(net.bridges).flatMap((b) => b.interfaces),
      ...Object.values(net.vlans).map((v) => v.link),
    ];
    assert.deepEqual(
      named.filter((n) => !defined.has(n)),
      [],
      text,
    );
    const restored = report.fields
      .filter((f) => f.status === 'restored')
      .map((f) => [f.path, f.value, f.sourceValue]);
    assert.deepEqual(
      restored.filter(([p]) => /vlans\.0\.(tag|link)|vlans\.1\.tag/.test(p!)),
      [
        ['netcfg.netcfg.vlans.0.tag', '900', '100'],
        ['netcfg.netcfg.vlans.0.link', 'bond1', 'bond0'],
        ['netcfg.netcfg.vlans.1.tag', '901', '101'],
      ],
    );
    assert.deepEqual(report.warnings, []);
  });

  it('v1 vlan and bond entries: staging’s vlan_id, vlan_link and bond_interfaces', () => {
    const v1 = (nic: string, bond: string, vlan: number) =>
      [
        'version: 1',
        'config:',
        '  - type: bond',
        `    name: ${bond}`,
        `    bond_interfaces: [${nic}1, ${nic}2]`,
        '  - type: vlan',
        `    name: ${bond}.${vlan}`,
        `    vlan_link: ${bond}`,
        `    vlan_id: ${vlan}`,
        '',
      ].join('\n');
    const { report, text } = syncNetcfg(v1('ens', 'bond1', 900), v1('eno', 'bond0', 100));
    assert.deepEqual(
      loadYaml<{ config: unknown[] }>(text).config,
      [
        { type: 'bond', name: 'bond1', bond_interfaces: ['ens1', 'ens2'] },
        { type: 'vlan', name: 'bond1.900', vlan_link: 'bond1', vlan_id: 900 },
      ],
      text,
    );
    assert.deepEqual(report.warnings, []);
  });
});
