/**
 * Identity parsing never fails a sync: a numeric character reference past
 * U+10FFFF (XML `&#x110000;`, YAML `"\U00110000"`) used to throw a RangeError
 * out of String.fromCodePoint, and the sync died (INTERNAL on the wire). Now
 * the value is a warning and nothing is written there.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { Pool } from '../../agent/engine';
import { createIdentityHooks, type IdentityReport } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { simulateSync } from './helpers/memory-view';
import { addConfig, readText } from './helpers/pool';

const domain = (name: string, extra = '') =>
  `<domain type='kvm'>\n  <name>${name}</name>\n  <uuid>7c1e9a52-3b4d-4f60-9a2e-0d5b8c6f1a2${extra || '3'}</uuid>\n  <devices>\n    <interface type='network'>\n      <mac address='52:54:00:6b:1a:0${extra || '1'}'/>\n      <source network='default'/>\n    </interface>\n  </devices>\n</domain>\n`;

describe('identity: character references past U+10FFFF', function () {
  this.timeout(60_000);
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(path.join(tempDir('snapsync-codepoints-'), 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  const cases: Array<{ what: string; prod: string; staging: string; field: string }> = [
    {
      what: "XML &#x110000; in the source's <name>",
      prod: domain('prod&#x110000;'),
      staging: domain('staging', '4'),
      field: 'config.libvirt.name',
    },
    {
      what: "XML &#1114112; in the target's <name>",
      prod: domain('prod'),
      staging: domain('staging&#1114112;', '4'),
      field: 'config.libvirt.name',
    },
    {
      what: 'YAML "\\U00110000" in the source\'s instance-id',
      prod: 'instance-id: "iid-\\U00110000"\nlocal-hostname: prod\n',
      staging: 'instance-id: iid-staging\nlocal-hostname: staging\n',
      field: 'config.cloudinit.instance-id',
    },
  ];
  for (const c of cases) {
    it(`${c.what}: the sync goes on, the field is a warning, nothing is written there`, () => {
      for (const [vm, text] of [
        ['vm-p', c.prod],
        ['vm-s', c.staging],
      ] as const) {
        pool.createContainer({ name: vm, type: 'vm' });
        addConfig(pool, vm, 'config', text);
      }
      pool.snapshot('vm-p', 'nightly');
      const result = pool.sync('vm-s', 'vm-p@nightly', { hooks: createIdentityHooks() });
      const report = result.identity as IdentityReport;
      const warning = report.warnings.find((w) => w.path === c.field);
      assert.equal(warning?.code, 'IDENTITY_UNPARSABLE', JSON.stringify(report.warnings));
      assert.ok(!report.fields.some((f) => f.path === c.field));
      // Every other field is still kept, and the unparsable value is left as the synced file has it.
      const out = readText(pool, 'vm-s-config');
      if (c.field.endsWith('name')) {
        assert.equal(out.includes('&#x110000;') || out.includes('&#1114112;'), c.prod.includes('&#x110000;'));
        assert.match(out, /<uuid>7c1e9a52-3b4d-4f60-9a2e-0d5b8c6f1a24<\/uuid>/);
      } else assert.match(out, /local-hostname: staging/);
    });
  }

  it("a bad escape in a reference: the target's is kept over it; one only the source has is refused, never thrown", () => {
    const dom = (file: string, extra = '') =>
      `<domain type='kvm'>\n  <name>x</name>\n  <devices>\n    <disk type='file' device='disk'>\n      <source file='${file}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n${extra}  </devices>\n</domain>\n`;
    const kept = simulateSync('file', Buffer.from(dom('/stg.img')), Buffer.from(dom('/prod&#x110000;.img')));
    assert.equal(kept.data.toString(), dom('/stg.img'));
    const extra =
      "    <disk type='file' device='disk'>\n      <source file='/p&#x110000;.img'/>\n      <target dev='vdb'/>\n    </disk>\n";
    assert.throws(
      () => simulateSync('file', Buffer.from(dom('/stg.img')), Buffer.from(dom('/prod.img', extra))),
      {
        code: 'IDENTITY_REFERENCE_UNMAPPED',
      },
    );
  });

  it('fuzz: whatever the bytes of either side, a sync returns a report or refuses with an IDENTITY_* code', () => {
    const dir = path.join(__dirname, '../fixtures/identity');
    const seeds = [
      fs.readFileSync(path.join(dir, 'prod-web.xml'), 'utf8'),
      fs.readFileSync(path.join(dir, 'prod-web.vmx'), 'utf8'),
      fs.readFileSync(path.join(dir, 'meta-data'), 'utf8'),
      fs.readFileSync(path.join(dir, 'references/prod-app.network-config'), 'utf8'),
      fs.readFileSync(path.join(dir, 'references/prod-app.xml'), 'utf8'),
    ];
    const junk = fc.oneof(
      fc.constantFrom(
        '&#x110000;',
        '&#1114112;',
        '\\U00110000',
        '&#xD800;',
        '<',
        '>',
        '"',
        "'",
        '\r\n',
        '- ',
        ': ',
        '#',
        '|',
        '&amp;',
        '\uFEFF',
      ),
      fc.string({ maxLength: 6 }),
    );
    const mutated = fc
      .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), junk), { maxLength: 6 }))
      .map(([seed, edits]) =>
        edits.reduce((t, [at, j]) => {
          const i = at % (t.length + 1);
          return t.slice(0, i) + j + t.slice(i);
        }, seed),
      );
    fc.assert(
      fc.property(mutated, mutated, (target, source) => {
        try {
          simulateSync('file', Buffer.from(target), Buffer.from(source));
        } catch (err) {
          assert.match(
            String((err as { code?: string }).code),
            /^IDENTITY_(REFERENCE_UNMAPPED|SOURCE_REFERENCE)$/,
            String(err),
          );
        }
      }),
      { numRuns: 300 },
    );
  });
});
