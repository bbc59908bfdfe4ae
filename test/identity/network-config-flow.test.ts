/**
 * A cloud-init network-config written with one-line flow mappings
 * (`match: {macaddress: …}`, `nameservers: {addresses: […], search: […]}`, a
 * whole interface `{…}`), after a whole-VM sync in a real pool: its MAC, DNS
 * and addresses are staging's whichever style either side uses, each value
 * keeps staging's quotes, and what cloud-init's YAML loader (PyYAML) reads
 * back is staging's network.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { createIdentityHooks, type IdentityReport } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { addConfig, readText } from './helpers/pool';
import { run } from './helpers/tools';

/** What cloud-init reads: PyYAML's safe_load, as JSON. */
const loadYaml = <T>(text: string): T =>
  JSON.parse(
    run('python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], text)
      .stdout,
  );

interface Nic {
  match: { macaddress: string; driver?: string };
  addresses: string[];
  routes?: Array<{ to: string; via: string }>;
  nameservers: { addresses: string[]; search: string[] };
}
type Netplan = { network: { ethernets: Record<string, Nic> } };

type Style = 'flow' | 'block' | 'interface' | 'multi-line';
interface Side {
  nic: string;
  mac: string;
  net: string;
  domain: string;
}
const production: Side = { nic: 'eth0', mac: '"52:54:00:aa:05:21"', net: '10.20.5', domain: 'corp.example' };
const staging: Side = { nic: 'ens3', mac: '52:54:00:bb:05:21', net: '10.30.5', domain: "'stage.example'" };

/** One NIC's network-config in a style: block mappings, flow mappings under the NIC, or the whole NIC one flow mapping. */
function netcfg(side: Side, style: Style): string {
  const { nic, mac, net, domain } = side;
  const head = ['network:', '  version: 2', '  ethernets:'];
  if (style === 'interface')
    return [
      ...head,
      `    ${nic}: {match: {macaddress: ${mac}, driver: virtio_net}, addresses: [${net}.21/24], routes: [{to: default, via: ${net}.1}], nameservers: {addresses: [${net}.2, "${net}.3"], search: [${domain}]}}  # one line`,
      '',
    ].join('\n');
  if (style === 'multi-line')
    return [
      ...head,
      `    ${nic}: {`,
      '      match: {',
      `        macaddress: ${mac},  # the NIC`,
      '        driver: virtio_net',
      '      },',
      `      addresses: [${net}.21/24],`,
      '      routes: [',
      `        {to: default, via: ${net}.1}`,
      '      ],',
      '      nameservers: {addresses: [',
      `          ${net}.2,`,
      `          "${net}.3"`,
      `        ], search: [${domain}]}`,
      '    }',
      '',
    ].join('\n');
  if (style === 'flow')
    return [
      ...head,
      `    ${nic}:`,
      `      match: {macaddress: ${mac}, driver: virtio_net}`,
      `      addresses: [${net}.21/24]`,
      `      routes: [{to: default, via: ${net}.1}]`,
      `      nameservers: {addresses: [${net}.2, "${net}.3"], search: [${domain}]}`,
      '',
    ].join('\n');
  return [
    ...head,
    `    ${nic}:`,
    '      match:',
    `        macaddress: ${mac}`,
    '        driver: virtio_net',
    '      addresses:',
    `        - ${net}.21/24`,
    '      routes:',
    '        - to: default',
    `          via: ${net}.1`,
    '      nameservers:',
    '        addresses:',
    `          - ${net}.2`,
    `          - "${net}.3"`,
    '        search:',
    `          - ${domain}`,
    '',
  ].join('\n');
}

/** The NoCloud meta-data naming the NIC's MAC too, so that the safety net looks for production's everywhere. */
const metaData = (side: Side, host: string) =>
  [
    `instance-id: iid-${host}`,
    `local-hostname: ${host}`,
    'network-interfaces: |',
    `  iface eth0 inet static`,
    `    address ${side.net}.21`,
    `    hwaddress ether ${side.mac.replace(/"/g, '')}`,
    '',
  ].join('\n');

const unquote = (s: string) => s.replace(/^["']|["']$/g, '');

describe('identity: network-config flow mappings are parsed and restored as block ones', function () {
  this.timeout(60_000);
  after(cleanupTempDirs);
  let open: Pool | undefined;
  /** A pool of its own for each sync (the previous one closed). */
  const freshPool = (): Pool => {
    open?.close();
    open = Pool.create(path.join(tempDir('snapsync-netcfg-flow-'), 'pool'), { blockSize: 4096 });
    return open;
  };
  afterEach(() => {
    open?.close();
    open = undefined;
  });

  // production is `blue`, staging `green`
  const sync = (stagingStyle: Style, productionStyle: Style, withMeta = false) => {
    const pool = freshPool();
    for (const [name, side, style] of [
      ['blue', production, productionStyle],
      ['green', staging, stagingStyle],
    ] as const) {
      pool.createContainer({ name, type: 'vm' });
      addConfig(pool, name, 'netcfg', netcfg(side, style));
      if (withMeta) addConfig(pool, name, 'meta', metaData(side, name === 'blue' ? 'pdb01' : 'sdb01'));
    }
    pool.snapshot('blue', 'nightly');
    const report = pool.sync('green', 'blue@nightly', { hooks: createIdentityHooks('default') })
      .identity as IdentityReport;
    return {
      report,
      text: readText(pool, 'green-netcfg'),
      meta: withMeta ? readText(pool, 'green-meta') : '',
    };
  };

  const expectStaging = (text: string, report: IdentityReport) => {
    const ethernets = loadYaml<Netplan>(text).network.ethernets;
    assert.deepEqual(Object.keys(ethernets), [staging.nic], text);
    const nic = ethernets[staging.nic]!;
    assert.deepEqual(
      [nic.match.macaddress, nic.addresses, nic.routes?.[0]?.via, nic.nameservers],
      [
        unquote(staging.mac),
        [`${staging.net}.21/24`],
        `${staging.net}.1`,
        { addresses: [`${staging.net}.2`, `${staging.net}.3`], search: [unquote(staging.domain)] },
      ],
      text,
    );
    assert.equal(nic.match.driver, 'virtio_net', "production's settings otherwise");
    assert.ok(!/aa:05|10\.20\.|corp\.example/.test(text), `nothing of production's is left:\n${text}`);
    assert.ok(text.includes(staging.domain), `staging's quotes kept:\n${text}`);
    assert.deepEqual(report.warnings, []);
  };

  const cases: Array<[Style, Style]> = [
    ['flow', 'flow'],
    ['block', 'flow'],
    ['flow', 'block'],
    ['interface', 'interface'],
    ['block', 'interface'],
    ['interface', 'flow'],
    ['block', 'multi-line'],
    ['multi-line', 'flow'],
  ];
  for (const [stagingStyle, productionStyle] of cases) {
    it(`staging's ${stagingStyle} network-config over production's ${productionStyle}: MAC, DNS and routes are staging's`, () => {
      const { report, text } = sync(stagingStyle, productionStyle);
      expectStaging(text, report);
      const restored = report.fields.filter((f) => f.status === 'restored').map((f) => [f.path, f.value]);
      for (const field of [
        ['netcfg.netcfg.ethernets.0.match.macaddress', '52:54:00:bb:05:21'],
        ['netcfg.netcfg.ethernets.0.nameservers.addresses.1', '10.30.5.3'],
        ['netcfg.netcfg.ethernets.0.nameservers.search.0', 'stage.example'],
        ['netcfg.netcfg.ethernets.0.routes.0.via', '10.30.5.1'],
      ])
        assert.ok(
          restored.some(([p, v]) => p === field[0] && v === field[1]),
          `${field[0]} reported: ${JSON.stringify(restored)}`,
        );
    });
  }

  it("production's MAC in a flow mapping and in the meta-data: the sync is not refused, and staging keeps its MAC", () => {
    for (const productionStyle of ['flow', 'interface'] as const) {
      const { report, text, meta } = sync('block', productionStyle, true);
      expectStaging(text, report);
      assert.ok(meta.includes('hwaddress ether 52:54:00:bb:05:21'), meta);
    }
  });

  it('a flow node with a scalar going on past its line is reported IDENTITY_UNPARSABLE, never silently kept', () => {
    const multiLine = (side: Side) =>
      netcfg(side, 'block').replace(
        / {6}match:\n {8}macaddress: (.*)\n {8}driver: virtio_net\n/,
        '      match: {macaddress: $1, driver: virtio\n        _net}\n',
      );
    const pool = freshPool();
    for (const [name, side] of [
      ['blue', production],
      ['green', staging],
    ] as const) {
      pool.createContainer({ name, type: 'vm' });
      addConfig(pool, name, 'netcfg', multiLine(side));
    }
    pool.snapshot('blue', 'nightly');
    const report = pool.sync('green', 'blue@nightly', { hooks: createIdentityHooks('default') })
      .identity as IdentityReport;
    const warned = report.warnings.filter((w) => w.code === 'IDENTITY_UNPARSABLE').map((w) => w.path);
    assert.ok(warned.includes('netcfg.netcfg.ethernets.0.match'), JSON.stringify(report.warnings));
  });
});
