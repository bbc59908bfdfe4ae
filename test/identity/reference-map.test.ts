/**
 * referenceMap (`--map SRC=DST`) mistakes on a real pool: a DST that is one of
 * production's identity values, one of staging's own, or the DST of another
 * source MAC refuses the sync (INVALID_ARGUMENT, details.conflicts) and
 * nothing changes; an entry that matches nothing is a warning.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Pool, SnapsyncError } from '../../agent/engine';
import { createIdentityHooks, type IdentityReport } from '../../agent/identity';
import { checkReferenceMapUse } from '../../agent/identity/reference-map';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { addConfig, libvirtDomain, readText } from './helpers/pool';

const PROD_MACS = ['52:54:00:a1:b2:c3', '52:54:00:d4:e5:f6', '52:54:00:d4:e5:f7'];
const STAGING_MAC = '52:54:00:00:00:01';
const UUIDS = {
  prod: '11111111-2222-4333-8444-555555555555',
  staging: '99999999-8888-4777-8666-555555555555',
};

describe('identity: referenceMap mistakes', () => {
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(path.join(tempDir('snapsync-refmap-'), 'pool'), { blockSize: 4096 });
    for (const [name, macs] of [
      ['prod', PROD_MACS],
      ['staging', [STAGING_MAC]],
    ] as const) {
      pool.createContainer({ name, type: 'vm' });
      addConfig(pool, name, 'config', libvirtDomain(name, UUIDS[name], [...macs]));
    }
    pool.snapshot('prod', 'nightly');
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  const sync = (referenceMap: Record<string, string>) =>
    pool.sync('staging', 'prod@nightly', { hooks: createIdentityHooks('default', { referenceMap }) })
      .identity as IdentityReport;
  const refuses = (referenceMap: Record<string, string>, reason: RegExp) => {
    const before = readText(pool, 'staging-config');
    assert.throws(
      () => sync(referenceMap),
      (err: unknown) =>
        err instanceof SnapsyncError &&
        err.code === 'INVALID_ARGUMENT' &&
        err.details.argument === 'referenceMap' &&
        (err.details.conflicts as Array<{ reason: string }>).some((c) => reason.test(c.reason)),
    );
    assert.equal(readText(pool, 'staging-config'), before, 'nothing changed');
    assert.equal(pool.describe('staging').generation, 0);
    assert.deepEqual(pool.listSnapshots('staging'), [], 'no safety snapshot');
  };
  const fresh = { [PROD_MACS[2]!]: '52:54:00:12:34:57' };

  it("refuses a DST that is production's MAC", () => {
    refuses({ [PROD_MACS[1]!]: PROD_MACS[0]!, ...fresh }, /source's own value/);
  });

  it("refuses a DST that is staging's own MAC (two NICs with one MAC)", () => {
    refuses({ [PROD_MACS[1]!]: STAGING_MAC, ...fresh }, /already the target's/);
  });

  it("refuses two of production's MACs mapped to one DST", () => {
    refuses({ [PROD_MACS[1]!]: '52:54:00:12:34:56', [PROD_MACS[2]!]: '52:54:00:12:34:56' }, /also what/);
  });

  it('warns about an entry that matches nothing, and applies the others', () => {
    const report = sync({ [PROD_MACS[1]!]: '52:54:00:12:34:56', ...fresh, 'prod-typo': 'staging-net' });
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      [['referenceMap.prod-typo', 'IDENTITY_FIELD_MISSING']],
    );
    assert.match(report.warnings[0]!.message, /matched nothing/);
    const text = readText(pool, 'staging-config');
    assert.ok(text.includes("<mac address='52:54:00:12:34:56'/>") && text.includes(STAGING_MAC), text);
    assert.ok(!PROD_MACS.some((mac) => text.includes(mac)), text);
  });

  it('a MAC entry matches whatever its case and separators, and is credited as applied', () => {
    const upper = PROD_MACS[1]!.toUpperCase();
    const dashed = PROD_MACS[2]!.replaceAll(':', '-');
    const report = sync({ [upper]: '52:54:00:12:34:56', [dashed]: '52:54:00:12:34:57' });
    assert.deepEqual(report.warnings, [], 'both entries were applied');
    const text = readText(pool, 'staging-config');
    assert.ok(text.includes("<mac address='52:54:00:12:34:56'/>"), text);
    assert.ok(text.includes("<mac address='52:54:00:12:34:57'/>"), text);
  });

  it("refuses a DST that is another of production's networks, which staging does not use, unless shared on purpose", () => {
    const domain = (name: string, uuid: string, nics: Array<[string, string]>) =>
      libvirtDomain(name, uuid, []).replace(
        '  </devices>',
        `${nics
          .map(
            ([mac, net]) =>
              `    <interface type='network'>\n      <mac address='${mac}'/>\n      <source network='${net}'/>\n    </interface>\n`,
          )
          .join('')}  </devices>`,
      );
    addConfig(
      pool,
      'prod',
      'net',
      domain('prod', UUIDS.prod, [
        [PROD_MACS[0]!, 'app-net'],
        [PROD_MACS[1]!, 'dmz-net'],
      ]),
    );
    addConfig(pool, 'staging', 'net', domain('staging', UUIDS.staging, [[STAGING_MAC, 'stage-net']]));
    pool.snapshot('prod', 'nightly2');
    pool.snapshot('staging', 'base');
    const before = readText(pool, 'staging-net');
    const syncNet = (referenceMap: Record<string, string>) => {
      pool.revert('staging', 'base');
      return pool.sync('staging', 'prod@nightly2', {
        hooks: createIdentityHooks('default', { referenceMap }),
      }).identity as IdentityReport;
    };
    assert.throws(
      () => syncNet({ 'dmz-net': 'app-net', ...fresh }),
      (err: unknown) =>
        err instanceof SnapsyncError &&
        err.code === 'INVALID_ARGUMENT' &&
        /--map dmz-net=app-net: app-net is another of the source's references, which the target does not use \(to share it on purpose, also --map app-net=app-net\)/.test(
          err.message,
        ),
    );
    assert.equal(readText(pool, 'staging-net'), before, 'nothing changed');
    // A network staging uses itself is fine, and so is production's shared on purpose.
    syncNet({ 'dmz-net': 'stage-net', ...fresh });
    assert.match(
      readText(pool, 'staging-net'),
      /<source network='stage-net'\/>[\s\S]*<source network='stage-net'\/>/,
    );
    const shared = syncNet({ 'dmz-net': 'app-net', 'app-net': 'app-net', ...fresh });
    assert.deepEqual(shared.warnings, [], 'the share entry is not "matched nothing"');
    assert.match(readText(pool, 'staging-net'), /<source network='app-net'\/>/);
  });

  it('credits every entry a multi-name reference used (two VLAN tags, a network and its portgroup)', () => {
    const warnings: string[] = [];
    checkReferenceMapUse(
      'staging',
      'sync',
      { '100': '900', '101': '901', 'prod-typo': 'x' },
      { before: [], after: [] },
      {
        fields: [],
        references: [
          {
            path: 'config.libvirt.interface1.vlan',
            value: '900,901',
            status: 'mapped',
            sourceValue: '100,101',
            via: 'referenceMap: 100 → 900; referenceMap: 101 → 901',
          },
        ],
      },
      (path) => warnings.push(path),
    );
    assert.deepEqual(warnings, ['referenceMap.prod-typo']);
  });

  it("refuses production's MAC given in another notation, and a DST that is no MAC; writes a MAC DST in the config's notation", () => {
    refuses({ [PROD_MACS[1]!]: PROD_MACS[0]!.replaceAll(':', '-'), ...fresh }, /source's own value/);
    refuses({ [PROD_MACS[1]!]: PROD_MACS[0]!.replaceAll(':', ''), ...fresh }, /source's own value/);
    refuses({ [PROD_MACS[1]!]: 'hello', ...fresh }, /is not a MAC/);
    const report = sync({ [PROD_MACS[1]!]: '52-54-00-12-34-56', ...fresh });
    assert.ok(
      report.fields.some((f) => f.value === '52:54:00:12:34:56' && f.status === 'mapped'),
      JSON.stringify(report.fields),
    );
    const text = readText(pool, 'staging-config');
    assert.ok(text.includes("<mac address='52:54:00:12:34:56'/>"), text);
    assert.ok(!text.includes('52-54-00'), text);
  });
});
