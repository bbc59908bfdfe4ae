/**
 * VM identity in real config formats: after a VM sync the staging config is
 * production's file with staging's own identity values, byte for byte; the
 * libvirt XML still validates; a property test over random values and content.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { Pool } from '../../agent/engine';
import { createIdentityHooks, type IdentityReport } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { run } from './helpers';

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, '../fixtures/identity', name), 'utf8');

/** Swaps identity values in a config text (how the tests make "staging" from "production"). */
function swap(text: string, pairs: Array<[string, string]>): string {
  return pairs.reduce((t, [from, to]) => t.split(from).join(to), text);
}

function vmWithConfig(pool: Pool, vm: string, config: string): void {
  pool.createContainer({ name: vm, type: 'vm', labels: { env: vm } });
  pool.createContainer({ name: `${vm}-config`, type: 'file', file: { mode: 0o600, uid: 1000, gid: 1000 } });
  pool.write(`${vm}-config`, 0, Buffer.from(config));
  pool.addMember(vm, 'config', `${vm}-config`);
}

const readFile = (pool: Pool, name: string) => pool.read(name, 0, pool.describe(name).size).toString();

describe('identity: VM config files', function () {
  this.timeout(120_000);
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(tempDir(), { blockSize: 4096 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  const formats: Array<{ file: string; pairs: Array<[string, string]>; paths: string[] }> = [
    {
      file: 'prod-web.vmx',
      pairs: [
        ['displayName = "prod-web-01"', 'displayName = "staging-web-01-longer-name"'],
        ['"prod-web-01.example.internal"', '"stg.example.internal"'],
        [
          '56 4d 8e 21 0c 3a 9f 11-4b 77 2a 10 c3 e9 01 aa',
          '56 4d 00 11 22 33 44 55-66 77 88 99 aa bb cc dd',
        ],
        [
          '52 1f 6a 90 8d 3b 47 02-a1 5c 0e 77 9b 21 40 d3',
          '52 ff ee dd cc bb aa 99-88 77 66 55 44 33 22 11',
        ],
        ['00:0c:29:4a:7b:01', '00:0c:29:99:00:01'],
        ['00:50:56:aa:10:01', '00:50:56:bb:20:02'],
      ],
      paths: [
        'config.displayName',
        'config.ethernet0.generatedAddress',
        'config.ethernet1.address',
        'config.uuid.bios',
        'config.uuid.location',
        'config.vc.uuid',
        'config.guestinfo.hostname',
      ],
    },
    {
      file: 'prod-web.xml',
      pairs: [
        ['<name>prod-web-01</name>', '<name>stg-web</name>'],
        ['7c1e9a52-3b4d-4f60-9a2e-0d5b8c6f1a23', '0a0b0c0d-1111-4222-8333-444455556666'],
        ['52:54:00:6b:1a:01', '52:54:00:77:00:01'],
        ['52:54:00:6b:1a:02', '52:54:00:77:00:02'],
      ],
      paths: [
        'config.libvirt.name',
        'config.libvirt.uuid',
        'config.libvirt.interface0.mac',
        'config.libvirt.interface1.mac',
      ],
    },
    {
      file: 'meta-data',
      pairs: [
        ['iid-prod-web-01', 'iid-staging-web-01'],
        ['local-hostname: prod-web-01', 'local-hostname: staging-web-01'],
      ],
      paths: ['config.cloudinit.instance-id', 'config.cloudinit.local-hostname'],
    },
  ];

  for (const { file, pairs, paths } of formats) {
    it(`${file}: staging keeps its identity, everything else is production's`, () => {
      const production = fixture(file);
      const staging = swap(production, pairs);
      vmWithConfig(pool, 'prod', production);
      vmWithConfig(pool, 'staging', staging);
      // Production changes a setting that staging must receive.
      const tuned = production.replace(/16384|16777216|local-hostname: prod-web-01\n/, (m) =>
        m === '16384' ? '32768' : m === '16777216' ? '33554432' : `${m}# tuned\n`,
      );
      pool.write('prod-config', 0, Buffer.from(tuned));
      pool.snapshot('prod', 'nightly');
      const report = pool.sync('staging', 'prod@nightly', { hooks: createIdentityHooks() })
        .identity as IdentityReport;
      const restored = report.fields.filter((f) => f.status === 'restored').map((f) => f.path);
      assert.deepEqual(restored.sort(), [...paths].sort());
      assert.deepEqual(report.warnings, []);
      const expected = swap(tuned, pairs);
      assert.equal(readFile(pool, 'staging-config'), expected);
      assert.ok(report.fields.some((f) => f.path === 'config.file.mode' && f.value === '0600'));
      assert.deepEqual(
        report.fields.slice(0, 2).map((f) => f.path),
        ['name', 'uuid'],
      );
      if (file.endsWith('.xml')) {
        const out = path.join(tempDir(), 'staging.xml');
        fs.writeFileSync(out, expected);
        run('virt-xml-validate', [out, 'domain']); // exits non-zero (throws) when the document is invalid
        fs.writeFileSync(out, expected.replace('<uuid>', '<uuid><bogus/>'));
        assert.throws(
          () => run('virt-xml-validate', [out, 'domain']),
          'the validator does reject a broken domain',
        );
      }
    });
  }

  it("preserve: 'none' keeps nothing; a glob keeps only what it names", () => {
    const production = fixture('prod-web.vmx');
    vmWithConfig(pool, 'prod', production);
    vmWithConfig(pool, 'a', swap(production, formats[0]!.pairs));
    vmWithConfig(pool, 'b', swap(production, formats[0]!.pairs));
    pool.snapshot('prod', 's');
    pool.sync('a', 'prod@s', { hooks: createIdentityHooks('none') });
    assert.equal(readFile(pool, 'a-config'), production);
    const report = pool.sync('b', 'prod@s', { hooks: createIdentityHooks(['config.uuid.*']) })
      .identity as IdentityReport;
    assert.deepEqual(
      report.fields
        .filter((f) => f.status === 'restored')
        .map((f) => f.path)
        .sort(),
      ['config.uuid.bios', 'config.uuid.location'],
    );
  });

  it('an unparsable config is reported and left as the source had it', () => {
    vmWithConfig(pool, 'prod', fixture('prod-web.vmx'));
    vmWithConfig(pool, 'odd', 'this is not a config format we know\n');
    pool.createContainer({ name: 'odd-bin', type: 'file' });
    pool.write('odd-bin', 0, Buffer.from([0xff, 0xfe, 0x00, 0x80]));
    pool.addMember('odd', 'extra', 'odd-bin');
    pool.snapshot('prod', 's');
    const report = pool.sync('odd', 'prod@s', { hooks: createIdentityHooks(), members: ['config'] })
      .identity as IdentityReport;
    assert.equal(readFile(pool, 'odd-config'), fixture('prod-web.vmx'));
    assert.deepEqual(
      report.fields.filter((f) => f.status === 'restored'),
      [],
    );
  });

  it('property: whatever the values and the other lines, the target holds and reports its own values', async () => {
    const value = fc.stringMatching(/^[A-Za-z0-9:.-]{1,40}$/);
    const line = fc.stringMatching(/^[a-z][a-z0-9.]{0,20} = "[A-Za-z0-9 ._-]{0,30}"$/);
    await fc.assert(
      fc.property(
        fc.record({ name: value, uuid: value, mac: value }),
        fc.record({ name: value, uuid: value, mac: value }),
        fc.array(line, { maxLength: 30 }),
        (prod, staging, others) => {
          const make = (v: { name: string; uuid: string; mac: string }, extra: string[]) =>
            [
              'config.version = "8"',
              `displayName = "${v.name}"`,
              ...extra,
              `uuid.bios = "${v.uuid}"`,
              `ethernet0.generatedAddress = "${v.mac}"`,
              '',
            ].join('\n');
          const p = Pool.create(tempDir(), { blockSize: 4096 });
          try {
            vmWithConfig(p, 'prod', make(prod, others));
            vmWithConfig(p, 'stg', make(staging, []));
            p.snapshot('prod', 's');
            const report = p.sync('stg', 'prod@s', { hooks: createIdentityHooks() })
              .identity as IdentityReport;
            assert.equal(readFile(p, 'stg-config'), make(staging, others));
            for (const [field, v] of [
              ['config.displayName', staging.name],
              ['config.uuid.bios', staging.uuid],
              ['config.ethernet0.generatedAddress', staging.mac],
            ] as const) {
              const f = report.fields.find((x) => x.path === field)!;
              assert.equal(f.value, v);
              assert.equal(
                f.status,
                v ===
                  (field === 'config.displayName'
                    ? prod.name
                    : field === 'config.uuid.bios'
                      ? prod.uuid
                      : prod.mac)
                  ? 'unchanged'
                  : 'restored',
              );
            }
          } finally {
            void p.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
