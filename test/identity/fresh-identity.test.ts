/**
 * Identifiers the target never had (a NIC or disk label only production has)
 * get fresh values of the target's own instead of production's: checked on
 * the values themselves, then through whole-VM syncs in a real pool.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { createIdentityHooks, type IdentityReport } from '../../agent/identity';
import { FreshIdentity } from '../../agent/identity/fresh-identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { addConfig, libvirtDomain, readText } from './helpers/pool';

const SEED = '3f0e6a52-9c1d-4b7e-8a35-0c2d4e6f8a1b';

describe('identity: fresh values for identifiers the target never had', function () {
  this.timeout(60_000);
  after(cleanupTempDirs);

  it('keeps the layout of the value it replaces: separators, digit count, letter case, OUI', () => {
    const fresh = new FreshIdentity(SEED, []);
    const mac = fresh.valueFor('mac', '52:54:00:aa:bb:02')!;
    assert.match(mac, /^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
    assert.notEqual(mac, '52:54:00:aa:bb:02');
    // VMware accepts static MACs only in 00:50:56:00:00:00–3F:FF:FF; vCenter assigns ("vpx") from 80–BF.
    for (let i = 0; i < 64; i++) {
      const made = new FreshIdentity(`seed-${i}`, []);
      assert.match(
        made.valueFor('mac', '00:50:56:3F:CD:EF')!,
        /^00:50:56:[0-3][0-9A-F]:[0-9A-F]{2}:[0-9A-F]{2}$/,
      );
      assert.match(
        made.valueFor('mac', '00:50:56:BF:CD:EF')!,
        /^00:50:56:[89AB][0-9A-F]:[0-9A-F]{2}:[0-9A-F]{2}$/,
      );
    }
    assert.match(
      fresh.valueFor('uuid', '56 4d ff ee dd cc bb aa-99 88 77 66 55 44 33 22')!,
      /^([0-9a-f]{2} ){7}[0-9a-f]{2}-([0-9a-f]{2} ){7}[0-9a-f]{2}$/,
    );
    assert.match(
      fresh.valueFor('uuid', '5E1C0A11-7B2D-4C3E-9F40-A1B2C3D4E5F6')!,
      /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/,
    );
    assert.match(fresh.valueFor('uuid', '1a2b3c4d')!, /^[0-9a-f]{8}$/);
  });

  it('is the same for one source value and seed, differs between targets, and avoids values taken', () => {
    const a = new FreshIdentity(SEED, []);
    const first = a.valueFor('mac', '52:54:00:aa:bb:02')!;
    assert.equal(
      a.valueFor('mac', '52:54:00:AA:BB:02')?.toLowerCase(),
      first,
      'one source value, one fresh value',
    );
    assert.equal(
      new FreshIdentity(SEED, []).valueFor('mac', '52:54:00:aa:bb:02'),
      first,
      'the same at every sync',
    );
    assert.notEqual(new FreshIdentity('another-target', []).valueFor('mac', '52:54:00:aa:bb:02'), first);
    const taken = new FreshIdentity(SEED, [first.toUpperCase()]).valueFor('mac', '52:54:00:aa:bb:02')!;
    assert.notEqual(taken, first, "never one of the target's own values");
  });

  it('makes none for a value it cannot lay out again, or a group MAC', () => {
    const fresh = new FreshIdentity(SEED, []);
    assert.equal(fresh.valueFor('mac', 'not a mac'), null);
    assert.equal(fresh.valueFor('mac', '52:54:00:aa:bb'), null);
    assert.equal(fresh.valueFor('mac', '01:00:5e:00:00:01'), null);
    assert.equal(fresh.valueFor('uuid', '1234'), null);
  });

  describe('in a whole-VM sync', () => {
    let pool: Pool;
    beforeEach(() => {
      pool = Pool.create(path.join(tempDir('snapsync-fresh-'), 'pool'), { blockSize: 4096 });
    });
    afterEach(() => pool.close());

    const netcfg = (macs: string[]) =>
      [
        'network:',
        '  version: 2',
        '  ethernets:',
        ...macs.flatMap((mac, i) => [`    nic${i}:`, '      match:', `        macaddress: "${mac}"`]),
        '',
      ].join('\n');
    const PROD_MACS = ['52:54:00:00:00:01', '52:54:00:00:00:02'];
    const vm = (name: string, uuid: string, macs: string[]) => {
      pool.createContainer({ name, type: 'vm' });
      addConfig(pool, name, 'config', libvirtDomain(name, uuid, macs));
      addConfig(pool, name, 'netcfg', netcfg(macs));
    };
    const sync = (target: string, snapshot: string) =>
      pool.sync(target, `prod@${snapshot}`, { hooks: createIdentityHooks() }).identity as IdentityReport;
    const field = (report: IdentityReport, p: string) => report.fields.find((f) => f.path === p);

    it("production's added NIC gets a fresh MAC, the same in the VM config and the network-config, kept at the next refresh", () => {
      vm('prod', '11111111-2222-4333-8444-555555555555', PROD_MACS);
      vm('staging', '99999999-8888-4777-8666-555555555555', ['52:54:00:99:00:01']);
      vm('staging2', '77777777-8888-4777-8666-555555555555', ['52:54:00:77:00:01']);
      pool.snapshot('prod', 'nightly');

      const report = sync('staging', 'nightly');
      const mac = field(report, 'config.libvirt.interface1.mac');
      assert.equal(mac?.status, 'generated');
      assert.equal(mac?.sourceValue, PROD_MACS[1]);
      assert.match(mac!.value, /^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
      assert.ok(!PROD_MACS.includes(mac!.value) && mac!.value !== '52:54:00:99:00:01');
      assert.deepEqual(field(report, 'netcfg.netcfg.ethernets.1.match.macaddress'), {
        path: 'netcfg.netcfg.ethernets.1.match.macaddress',
        value: mac!.value,
        status: 'generated',
        sourceValue: PROD_MACS[1],
      });
      assert.deepEqual(
        report.warnings.filter((w) => w.path.endsWith('mac') || w.path.endsWith('macaddress')),
        [],
      );
      // What a user reads back: no production MAC left in either file.
      const config = readText(pool, 'staging-config');
      const seedFile = readText(pool, 'staging-netcfg');
      for (const prod of PROD_MACS) assert.ok(!config.includes(prod) && !seedFile.includes(prod), prod);
      assert.ok(config.includes(`<mac address='${mac!.value}'/>`));
      assert.ok(seedFile.includes(`macaddress: "${mac!.value}"`), seedFile);

      // Another staging VM synced from the same snapshot gets a MAC of its own.
      const other = field(sync('staging2', 'nightly'), 'config.libvirt.interface1.mac');
      assert.equal(other?.status, 'generated');
      assert.notEqual(other?.value, mac!.value);

      // The next refresh keeps staging's MAC: it is staging's own now.
      pool.snapshot('prod', 'nightly-2');
      const again = field(sync('staging', 'nightly-2'), 'config.libvirt.interface1.mac');
      assert.deepEqual(again, {
        path: 'config.libvirt.interface1.mac',
        value: mac!.value,
        status: 'restored',
        sourceValue: PROD_MACS[1],
      });
    });

    it("an address only production's NIC has is written as the caller's map says, or warned about", () => {
      const withAddresses = (macs: string[], net: string) =>
        [
          'network:',
          '  version: 2',
          '  ethernets:',
          ...macs.flatMap((mac, i) => [
            `    nic${i}:`,
            '      match:',
            `        macaddress: "${mac}"`,
            '      addresses:',
            `        - ${net}.${10 + i}/24`,
          ]),
          '',
        ].join('\n');
      for (const name of ['prod', 'staging']) pool.createContainer({ name, type: 'vm' });
      addConfig(pool, 'prod', 'netcfg', withAddresses(PROD_MACS, '10.20.0'));
      addConfig(pool, 'staging', 'netcfg', withAddresses(['52:54:00:99:00:01'], '10.30.0'));
      pool.snapshot('prod', 'nightly');
      const first = pool.sync('staging', 'prod@nightly', { hooks: createIdentityHooks() });
      const warned = first.identity as IdentityReport;
      assert.deepEqual(
        warned.warnings.map((w) => [w.path, w.code]),
        [
          ['netcfg.netcfg.ethernets.1.id', 'IDENTITY_FROM_SOURCE'],
          ['netcfg.netcfg.ethernets.1.addresses.0', 'IDENTITY_FROM_SOURCE'],
        ],
      );
      pool.revert('staging', first.safetySnapshot!.name);
      const report = pool.sync('staging', 'prod@nightly', {
        hooks: createIdentityHooks('default', { referenceMap: { '10.20.0.11/24': '10.30.0.11/24' } }),
      }).identity as IdentityReport;
      assert.deepEqual(
        report.warnings.map((w) => w.path),
        ['netcfg.netcfg.ethernets.1.id'],
        'the interface name stays a warning: it was not mapped',
      );
      assert.deepEqual(field(report, 'netcfg.netcfg.ethernets.1.addresses.0'), {
        path: 'netcfg.netcfg.ethernets.1.addresses.0',
        value: '10.30.0.11/24',
        status: 'mapped',
        sourceValue: '10.20.0.11/24',
      });
      const text = readText(pool, 'staging-netcfg');
      assert.ok(
        text.includes('        - 10.30.0.10/24\n') && text.includes('        - 10.30.0.11/24\n'),
        text,
      );
      assert.ok(!text.includes('10.20.0.'), 'no production address left');
    });

    it('a MAC mapped by the caller keeps the quotes the source wrote it in (YAML 1.1 reads it as a number unquoted)', () => {
      vm('prod', '11111111-2222-4333-8444-555555555555', PROD_MACS);
      vm('staging', '99999999-8888-4777-8666-555555555555', ['52:54:00:99:00:01']);
      pool.snapshot('prod', 'nightly');
      pool.sync('staging', 'prod@nightly', {
        hooks: createIdentityHooks('default', { referenceMap: { '52:54:00:00:00:02': '52:54:00:12:34:56' } }),
      });
      assert.ok(readText(pool, 'staging-netcfg').includes('macaddress: "52:54:00:12:34:56"'));
      assert.ok(readText(pool, 'staging-config').includes("<mac address='52:54:00:12:34:56'/>"));
    });

    it('preserve "none" keeps the source\'s values, as it does for fields the target had', () => {
      vm('prod', '11111111-2222-4333-8444-555555555555', PROD_MACS);
      vm('staging', '99999999-8888-4777-8666-555555555555', ['52:54:00:99:00:01']);
      pool.snapshot('prod', 'nightly');
      const report = pool.sync('staging', 'prod@nightly', { hooks: createIdentityHooks('none') })
        .identity as IdentityReport;
      assert.equal(field(report, 'config.libvirt.interface1.mac'), undefined);
      assert.ok(readText(pool, 'staging-config').includes(PROD_MACS[1]!));
    });
  });
});
