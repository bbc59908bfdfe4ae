/**
 * VM identity in real config formats, through a real pool: after a VM sync the
 * staging config is production's file with staging's own identity values and
 * nothing else changed; the libvirt XML still validates; a whole VM (config,
 * disk, cloud-init seed, nvram) syncs in one go with stable paths.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import {
  createIdentityHooks,
  detectFormat,
  FORMAT_LABEL,
  type IdentityReport,
  MAX_CONFIG_BYTES,
  type Preserve,
  parseConfig,
} from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import {
  addConfig,
  blocksInNewTables,
  exportImage,
  type FileOwnMeta,
  importImage,
  readText,
} from './helpers/pool';
import { gpt512, run } from './helpers/tools';

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, '../fixtures/identity', name), 'utf8');

/** Swaps identity values in a config text (how the tests make "staging" from "production"); each must occur. */
function swap(text: string, pairs: Array<[string, string]>): string {
  return pairs.reduce((t, [from, to]) => {
    assert.ok(t.includes(from), `the fixture contains ${from}`);
    return t.split(from).join(to);
  }, text);
}

function vm(pool: Pool, name: string, config: string | Buffer, meta: FileOwnMeta = {}): void {
  pool.createContainer({ name, type: 'vm', labels: { env: name } });
  addConfig(pool, name, 'config', config, meta);
}

/** Each side's config file has its own mode, owner and labels: the sync must keep the target's. */
const PROD_FILE: FileOwnMeta = { labels: { tier: 'production' }, file: { mode: 0o644, uid: 0, gid: 0 } };
const STAGING_FILE: FileOwnMeta = {
  labels: { tier: 'staging' },
  file: { mode: 0o640, uid: 1001, gid: 1002 },
};

/**
 * A caller who accepts the source's references as they are (a target whose own config could not be read
 * has no references to keep): every name in them mapped to itself, and the source VM's name allowed.
 */
function acceptSource(
  text: string,
  vmName = 'prod',
): { referenceMap: Record<string, string>; allowSourceReferences: string[] } {
  const format = detectFormat(text);
  const parsed = format ? parseConfig(format, text) : null;
  // Not what is taken out when the target has none (cloud-init guestinfo, ESXi's runtime files): never mapped.
  const names = parsed?.ok
    ? parsed.spans.flatMap((s) => (s.reference?.removeUnlessTargetHas ? [] : (s.reference?.names ?? [])))
    : [];
  return { referenceMap: Object.fromEntries(names.map((n) => [n, n])), allowSourceReferences: [vmName] };
}

const configBytes = (pool: Pool, name: string) => pool.read(name, 0, pool.describe(name).size);

const restoredPaths = (r: IdentityReport) =>
  r.fields
    .filter((f) => f.status === 'restored')
    .map((f) => f.path)
    .sort();

const FORMATS: Array<{
  file: string;
  pairs: Array<[string, string]>;
  paths: string[];
  tune: [string, string];
}> = [
  {
    file: 'prod-web.vmx',
    pairs: [
      ['displayName = "prod-web-01"', 'displayName = "staging-web-01-longer-name"'],
      ['"prod-web-01.example.internal"', '"stg.example.internal"'],
      ['56 4d 8e 21 0c 3a 9f 11-4b 77 2a 10 c3 e9 01 aa', '56 4d 00 11 22 33 44 55-66 77 88 99 aa bb cc dd'],
      ['52 1f 6a 90 8d 3b 47 02-a1 5c 0e 77 9b 21 40 d3', '52 ff ee dd cc bb aa 99-88 77 66 55 44 33 22 11'],
      ['00:0c:29:4a:7b:01', '00:0c:29:99:00:01'],
      ['00:50:56:aa:10:01', '00:50:56:bb:20:02'],
    ],
    paths: [
      'config.displayName',
      'config.ethernet0.generatedAddress',
      'config.ethernet1.address',
      'config.guestinfo.hostname',
      'config.uuid.bios',
      'config.uuid.location',
      'config.vc.uuid',
    ],
    tune: ['memSize = "16384"', 'memSize = "32768"'],
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
      'config.libvirt.interface0.mac',
      'config.libvirt.interface1.mac',
      'config.libvirt.name',
      'config.libvirt.uuid',
    ],
    tune: ["<vcpu placement='static'>4</vcpu>", "<vcpu placement='static'>8</vcpu>"],
  },
  {
    file: 'meta-data',
    pairs: [
      ['iid-prod-web-01', 'iid-staging-web-01'],
      ['local-hostname: prod-web-01', 'local-hostname: stg-01'],
    ],
    paths: ['config.cloudinit.instance-id', 'config.cloudinit.local-hostname'],
    tune: ['iface eth0 inet dhcp', 'iface eth0 inet6 auto'],
  },
];

describe('identity: VM config files in a real pool', function () {
  this.timeout(120_000);
  let pool: Pool;
  let dir: string;
  beforeEach(() => {
    dir = tempDir('snapsync-identity-vm-');
    pool = Pool.create(path.join(dir, 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  for (const { file, pairs, paths, tune } of FORMATS) {
    it(`${file}: staging keeps its identity and its file's mode, owner and labels; every other byte is production's (a setting production changed included)`, () => {
      const production = fixture(file);
      const staging = swap(production, pairs);
      vm(pool, 'prod', production, PROD_FILE);
      vm(pool, 'staging', staging, STAGING_FILE);
      const tuned = swap(production, [tune]);
      pool.write('prod-config', 0, Buffer.from(tuned));
      pool.snapshot('prod', 'nightly');
      const stagingVm = pool.describe('staging');

      const report = pool.sync('staging', 'prod@nightly', { hooks: createIdentityHooks() })
        .identity as IdentityReport;
      assert.deepEqual(report.warnings, []);
      assert.deepEqual(restoredPaths(report), paths);
      for (const f of report.fields.filter((x) => x.status === 'restored')) {
        assert.ok(staging.includes(f.value), `${f.path} reports staging's ${f.value}`);
        assert.ok(
          f.sourceValue !== undefined && production.includes(f.sourceValue),
          `${f.path} names production's value`,
        );
      }
      const expected = swap(tuned, pairs);
      assert.equal(readText(pool, 'staging-config'), expected);
      assert.deepEqual(
        report.fields.filter(
          (f) => !f.path.startsWith('config.') || /^config\.(name|uuid|labels|file\.\w+)$/.test(f.path),
        ),
        [
          { path: 'name', value: 'staging', status: 'unchanged' },
          { path: 'uuid', value: stagingVm.uuid, status: 'unchanged' },
          { path: 'labels', value: '{"env":"staging"}', status: 'unchanged' },
          { path: 'config.name', value: 'staging-config', status: 'unchanged' },
          { path: 'config.uuid', value: pool.describe('staging-config').uuid, status: 'unchanged' },
          { path: 'config.labels', value: '{"tier":"staging"}', status: 'unchanged' },
          { path: 'config.file.mode', value: '0640', status: 'unchanged' },
          { path: 'config.file.owner', value: '1001:1002', status: 'unchanged' },
        ],
      );
      const after = pool.describe('staging-config');
      assert.deepEqual(after.file, STAGING_FILE.file, "the file's mode and owner are staging's");
      assert.deepEqual(after.labels, STAGING_FILE.labels);
      assert.deepEqual(
        pool.describe('prod-config').file,
        PROD_FILE.file,
        'production differs, so this can fail',
      );
      if (file.endsWith('.xml')) {
        const out = path.join(dir, 'staging.xml');
        fs.writeFileSync(out, expected);
        run('virt-xml-validate', [out, 'domain']); // throws when the document is not a valid domain
        fs.writeFileSync(out, expected.replace('<uuid>', '<uuid><bogus/>'));
        assert.throws(
          () => run('virt-xml-validate', [out, 'domain']),
          'the validator does reject a broken domain',
        );
      }
    });
  }

  /** The line a UTF-8 BOM goes in front of: an identity key where the format allows one first. */
  const FIRST_LINE: Record<string, string> = {
    'prod-web.vmx': 'displayName',
    'prod-web.xml': '<domain',
    'meta-data': 'instance-id',
  };
  for (const { file, pairs, paths } of FORMATS) {
    it(`${file} with a UTF-8 byte-order mark: the synced file is production's, BOM included, with staging's values`, () => {
      const lines = fixture(file).split('\n');
      const first = lines.findIndex((l) => l.startsWith(FIRST_LINE[file]!));
      const production = `\uFEFF${[lines[first], ...lines.slice(0, first), ...lines.slice(first + 1)].join('\n')}`;
      vm(pool, 'prod', production);
      vm(pool, 'staging', swap(production, pairs));
      pool.snapshot('prod', 'nightly');

      const report = pool.sync('staging', 'prod@nightly', { hooks: createIdentityHooks() })
        .identity as IdentityReport;
      assert.deepEqual(report.warnings, []);
      assert.deepEqual(restoredPaths(report), paths, 'the key right after the BOM is found too');
      const out = configBytes(pool, 'staging-config');
      assert.deepEqual([...out.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
      assert.ok(out.equals(Buffer.from(swap(production, pairs), 'utf8')), 'byte for byte, nothing shifted');
    });
  }

  it('a whole VM in one sync: config, disk0, cloud-init seed and nvram, with role-prefixed paths and globs', () => {
    const prodDisk = gpt512(
      path.join(dir, 'prod.img'),
      16,
      'AAAAAAAA-1111-4222-8333-444444444444',
      'AAAAAAAA-5555-4666-8777-888888888888',
      'prod',
    );
    gpt512(
      path.join(dir, 'stg.img'),
      16,
      'BBBBBBBB-1111-4222-8333-444444444444',
      'BBBBBBBB-5555-4666-8777-888888888888',
      'stg',
    );
    const nvram = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x4e, 0x56]);
    const stg = [
      path.join(dir, 'stg.img'),
      swap(fixture('prod-web.vmx'), FORMATS[0]!.pairs),
      swap(fixture('meta-data'), FORMATS[2]!.pairs),
    ] as const;
    for (const [name, disk, cfg, seed] of [
      ['prod', prodDisk.file, fixture('prod-web.vmx'), fixture('meta-data')],
      ['staging', ...stg],
      ['staging2', ...stg],
    ] as const) {
      vm(pool, name, cfg);
      addConfig(pool, name, 'seed', seed);
      addConfig(pool, name, 'nvram', nvram);
      importImage(pool, `${name}-disk0`, disk);
      pool.addMember(name, 'disk0', `${name}-disk0`);
    }
    pool.snapshot('prod', 'nightly');

    const all = pool.sync('staging', 'prod@nightly', { hooks: createIdentityHooks() })
      .identity as IdentityReport;
    assert.deepEqual(all.warnings, [], 'a binary nvram member is not a config: no warning');
    assert.deepEqual(restoredPaths(all), [
      ...FORMATS[0]!.paths,
      'disk0.gpt.diskGuid',
      'seed.cloudinit.instance-id',
      'seed.cloudinit.local-hostname',
    ]);
    assert.ok(!all.fields.some((f) => f.path === 'disk0.mbr.signature'), 'the MBR signature is opt-in');
    assert.ok(all.fields.some((f) => f.path === 'nvram.file.mode'));
    exportImage(pool, 'staging-disk0', path.join(dir, 'out.img'));
    assert.match(run('sgdisk', ['-v', path.join(dir, 'out.img')]).stdout, /No problems found/);
    assert.match(
      run('sgdisk', ['-p', path.join(dir, 'out.img')]).stdout,
      /Disk identifier \(GUID\): BBBBBBBB-1111/,
    );

    // The same VM, keeping only the NICs and the disks' GPT (partition GUIDs included, as the glob names them).
    const some = pool.sync('staging2', 'prod@nightly', {
      hooks: createIdentityHooks(['config.ethernet*', 'disk*.gpt.*']),
    }).identity as IdentityReport;
    assert.deepEqual(restoredPaths(some), [
      'config.ethernet0.generatedAddress',
      'config.ethernet1.address',
      'disk0.gpt.diskGuid',
      'disk0.gpt.partition1.uniqueGuid',
    ]);
    assert.equal(
      readText(pool, 'staging2-seed'),
      fixture('meta-data'),
      "the seed's identity was not asked for: production's",
    );
    exportImage(pool, 'staging2-disk0', path.join(dir, 'out2.img'));
    assert.match(run('sgdisk', ['-v', path.join(dir, 'out2.img')]).stdout, /No problems found/);
    assert.match(
      run('sgdisk', ['-i', '1', path.join(dir, 'out2.img')]).stdout,
      /Partition unique GUID: BBBBBBBB-5555/,
    );
  });

  it("preserve 'none' keeps no content value, and the report warns about each of the target's it did not keep; a name the target does not have is warned about", () => {
    const production = fixture('prod-web.vmx');
    vm(pool, 'prod', production);
    vm(pool, 'a', swap(production, FORMATS[0]!.pairs));
    vm(pool, 'b', swap(production, FORMATS[0]!.pairs));
    pool.snapshot('prod', 's');
    const none = pool.sync('a', 'prod@s', { hooks: createIdentityHooks('none') }).identity as IdentityReport;
    assert.equal(readText(pool, 'a-config'), production);
    assert.deepEqual(restoredPaths(none), []);
    const notKept = [
      'config.displayName',
      'config.ethernet0.generatedAddress',
      'config.ethernet1.address',
      'config.uuid.bios',
      'config.uuid.location',
      'config.vc.uuid',
      'config.guestinfo.hostname',
    ];
    assert.deepEqual(
      none.warnings.map((w) => [w.path, w.code]),
      notKept.map((p) => [p, 'IDENTITY_FROM_SOURCE']),
    );
    assert.match(
      none.warnings[0]!.message,
      /not kept \(preserve does not select it\): it now holds the source's value prod-web-01 instead of the target's/,
    );
    const some = pool.sync('b', 'prod@s', {
      hooks: createIdentityHooks(['config.uuid.*', 'config.ethernet7.address']),
    }).identity as IdentityReport;
    assert.deepEqual(restoredPaths(some), ['config.uuid.bios', 'config.uuid.location']);
    assert.deepEqual(
      some.warnings.map((w) => [w.path, w.code]),
      [
        ...notKept.filter((p) => !p.startsWith('config.uuid.')).map((p) => [p, 'IDENTITY_FROM_SOURCE']),
        ['config.ethernet7.address', 'IDENTITY_FIELD_MISSING'],
      ],
    );
    assert.throws(() => createIdentityHooks([''] as Preserve), {
      name: 'SnapsyncError',
      code: 'INVALID_ARGUMENT',
    });
  });

  it('a config that cannot be parsed is reported and never written; a synced one that cannot be read refuses the sync', () => {
    const production = fixture('prod-web.xml');
    vm(pool, 'prod', production);
    vm(pool, 'odd', 'this is not a config format we know\n');
    vm(pool, 'declared', fixture('meta-data'), { labels: { [FORMAT_LABEL]: 'ovf' } });
    vm(pool, 'broken', production.replace('</domain>', ''));
    pool.snapshot('prod', 's');
    // The target's references cannot be read, so none of the source's can be kept out: refused, nothing changed.
    const oddBefore = readText(pool, 'odd-config');
    assert.throws(() => pool.sync('odd', 'prod@s', { hooks: createIdentityHooks() }), {
      code: 'IDENTITY_REFERENCE_UNMAPPED',
    });
    assert.equal(readText(pool, 'odd-config'), oddBefore);
    const accept = { hooks: createIdentityHooks('default', acceptSource(production)) };
    const odd = pool.sync('odd', 'prod@s', accept).identity as IdentityReport;
    assert.deepEqual(odd.warnings.filter((w) => w.code !== 'IDENTITY_SOURCE_REFERENCE')[0], {
      path: 'config',
      code: 'IDENTITY_UNPARSABLE',
      message:
        "the target's content could not be read before the sync (the file is not a known config format (vmx, libvirt domain XML, cloud-init meta-data)); it was not kept",
    });
    assert.equal(readText(pool, 'odd-config'), production);
    assert.deepEqual(restoredPaths(odd), []);

    // A config of a format no profile knows: its references cannot be made the target's, so refused.
    const declaredBefore = readText(pool, 'declared-config');
    assert.throws(
      () => pool.sync('declared', 'prod@s', { hooks: createIdentityHooks() }),
      (err: Error) => {
        const e = err as Error & { code: string; details: { unreadable: Array<{ member: string }> } };
        assert.equal(e.code, 'IDENTITY_REFERENCE_UNMAPPED');
        assert.deepEqual(
          e.details.unreadable.map((u) => u.member),
          ['config'],
        );
        return true;
      },
    );
    assert.equal(readText(pool, 'declared-config'), declaredBefore, 'nothing changed');

    const broken = pool.sync('broken', 'prod@s', accept).identity as IdentityReport;
    assert.equal(broken.warnings[0]?.code, 'IDENTITY_UNPARSABLE');
    assert.match(broken.warnings[0]!.message, /libvirt: <domain> is never closed/);
    assert.equal(readText(pool, 'broken-config'), production);
  });

  it("a target without a config gets the source's: a fresh instance-id, its own name in the source's hostname, and whatever still names the source refused", () => {
    vm(pool, 'prod', fixture('meta-data').replace('production web server', 'prod web server'));
    pool.createContainer({ name: 'fresh', type: 'vm' });
    pool.snapshot('prod', 's');
    // The seed's comment names the source VM ("prod"): refused unless allowed by name.
    assert.throws(() => pool.sync('fresh', 'prod@s', { hooks: createIdentityHooks() }), {
      code: 'IDENTITY_SOURCE_REFERENCE',
    });
    assert.deepEqual(pool.describe('fresh').members, {}, 'nothing changed');
    const report = pool.sync('fresh', 'prod@s', {
      hooks: createIdentityHooks('default', { allowSourceReferences: ['prod'] }),
    }).identity as IdentityReport;
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      [['config', 'IDENTITY_SOURCE_REFERENCE']],
    );
    const fields = new Map(report.fields.map((f) => [f.path, f]));
    const instanceId = fields.get('config.cloudinit.instance-id')!;
    assert.equal(instanceId.status, 'generated');
    assert.equal(instanceId.sourceValue, 'iid-prod-web-01');
    assert.match(
      instanceId.value,
      /^[a-z]{3}-[a-z]{4}-[a-z]{3}-\d\d$/,
      'the same layout, other letters and digits',
    );
    assert.equal(fields.get('config.cloudinit.local-hostname')?.value, 'fresh-web-01');
    const seed = readText(pool, 'fresh-config');
    assert.match(seed, new RegExp(`^instance-id: ${instanceId.value}$`, 'm'));
    assert.match(seed, /^local-hostname: fresh-web-01$/m);
  });

  it('restore writes only the blocks that hold identity (same-length values), or from the first change on (other lengths)', () => {
    // 64 KiB of settings before the identity lines, 32 KiB between them: 4 KiB blocks.
    const filler = (tag: string, n: number) =>
      Array.from({ length: n }, (_, i) => `${tag}.setting${i} = "${'x'.repeat(20)}"`).join('\n');
    const make = (mac: string, name: string, tail: string) =>
      `.encoding = "UTF-8"\nconfig.version = "8"\n${filler('a', 2000)}\nethernet0.generatedAddress = "${mac}"\n${filler('b', 1000)}\ndisplayName = "${name}"\n${tail}\n`;
    vm(pool, 'prod', make('00:0c:29:00:00:01', 'prod', filler('c', 30)));
    vm(pool, 'same', make('00:0c:29:00:00:02', 'stag', ''));
    vm(pool, 'longer', make('00:0c:29:00:00:03', 'staging-web-01', ''));
    pool.snapshot('prod', 's');

    const sameResult = pool.sync('same', 'prod@s', { hooks: createIdentityHooks() });
    const same = sameResult.identity as IdentityReport;
    assert.deepEqual(restoredPaths(same), ['config.displayName', 'config.ethernet0.generatedAddress']);
    assert.equal(same.blocksWritten, 2, 'one block per value, none of the 20+ blocks between them');
    assert.equal(blocksInNewTables(pool, sameResult), 2, "the pool's own count of blocks the sync left");

    const longerResult = pool.sync('longer', 'prod@s', { hooks: createIdentityHooks() });
    const longer = longerResult.identity as IdentityReport;
    const text = readText(pool, 'longer-config');
    const shifted =
      Math.ceil(text.length / 4096) - Math.floor(text.indexOf('displayName = "staging-web-01"') / 4096);
    assert.equal(
      longer.blocksWritten,
      1 + shifted,
      "the MAC's block, then from displayName's block to the end",
    );
    assert.equal(blocksInNewTables(pool, longerResult), 1 + shifted);
    assert.equal(text, make('00:0c:29:00:00:03', 'staging-web-01', filler('c', 30)));
  });

  // A target with no readable config has no cloud-init guestinfo nor ESXi runtime files of its own:
  // production's are taken out.
  const removed = (field: string, value: string) => ({
    path: `config.${field}`,
    code: 'IDENTITY_SOURCE_REMOVED',
    message: `the target has no ${field} of its own: the source's (${value}) is taken out of the synced config`,
  });
  const CLOUD_INIT_REMOVED = [
    removed('guestinfo.metadata.encoding', 'base64'),
    removed('migrate.hostLog', 'prod-web-01-3d1b6f.hlog'),
    removed('sched.swap.derivedName', '/vmfs/volumes/datastore1/prod-web-01/prod-web-01-3d1b6f.vswp'),
  ];
  const withoutCloudInit = (text: string) =>
    text
      .replace('guestinfo.metadata.encoding = "base64"\n', '')
      .replace('migrate.hostLog = "prod-web-01-3d1b6f.hlog"\n', '')
      .replace(
        'sched.swap.derivedName = "/vmfs/volumes/datastore1/prod-web-01/prod-web-01-3d1b6f.vswp"\n',
        '',
      );

  it("a config over 4 MiB is not parsed: the target's is a warning; a synced one refuses the sync", () => {
    const production = fixture('prod-web.vmx');
    const staging = swap(production, FORMATS[0]!.pairs);
    const huge = (text: string) => `${text}# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`; // a comment pads it past the limit
    vm(pool, 'prod', production);
    vm(pool, 'huge-prod', huge(production));
    vm(pool, 'huge-staging', huge(staging));
    vm(pool, 'staging', staging);
    pool.snapshot('prod', 's');
    pool.snapshot('huge-prod', 's');
    const size = Buffer.byteLength(huge(staging));

    // The target's config is too large: nothing of it could be kept, its references included (refused unless accepted).
    assert.throws(() => pool.sync('huge-staging', 'prod@s', { hooks: createIdentityHooks() }), {
      code: 'IDENTITY_REFERENCE_UNMAPPED',
    });
    const target = pool.sync('huge-staging', 'prod@s', {
      hooks: createIdentityHooks('default', acceptSource(production)),
    }).identity as IdentityReport;
    assert.deepEqual(
      target.warnings.filter((w) => w.code !== 'IDENTITY_SOURCE_REFERENCE'),
      [
        {
          path: 'config',
          code: 'IDENTITY_TOO_LARGE',
          message: `the target's content could not be read before the sync (${size} bytes is more than a config file (${MAX_CONFIG_BYTES}); not parsed); it was not kept`,
        },
        ...CLOUD_INIT_REMOVED,
      ],
    );
    assert.deepEqual(restoredPaths(target), []);
    assert.equal(readText(pool, 'huge-staging-config'), withoutCloudInit(production));

    // The synced config is too large: its disks and networks cannot be checked, so the sync is refused.
    assert.throws(() => pool.sync('staging', 'huge-prod@s', { hooks: createIdentityHooks() }), {
      code: 'IDENTITY_REFERENCE_UNMAPPED',
      message: /the synced config cannot be read \(\d+ bytes is more than a config file/,
    });
    assert.equal(pool.describe('staging').generation, 0);
    assert.equal(readText(pool, 'staging-config'), staging, 'nothing changed');
  });

  it("a config that is not UTF-8 is not parsed: the target's is a warning; a synced one refuses the sync", () => {
    const production = fixture('prod-web.vmx');
    const staging = swap(production, FORMATS[0]!.pairs);
    // Latin-1, as an old editor saves it: é is the single byte E9, not valid UTF-8.
    const latin1 = (text: string) => Buffer.from(`${text}# Serveur web, équipe café\n`, 'latin1');
    for (const text of [production, staging])
      assert.ok(latin1(text).toString('utf8').includes('\uFFFD'), 'the bytes are not UTF-8');
    vm(pool, 'prod', production);
    vm(pool, 'latin-prod', latin1(production));
    vm(pool, 'latin-staging', latin1(staging));
    vm(pool, 'staging', staging);
    pool.snapshot('prod', 's');
    pool.snapshot('latin-prod', 's');

    assert.throws(() => pool.sync('latin-staging', 'prod@s', { hooks: createIdentityHooks() }), {
      code: 'IDENTITY_REFERENCE_UNMAPPED',
    });
    const target = pool.sync('latin-staging', 'prod@s', {
      hooks: createIdentityHooks('default', acceptSource(production)),
    }).identity as IdentityReport;
    assert.deepEqual(
      target.warnings.filter((w) => w.code !== 'IDENTITY_SOURCE_REFERENCE'),
      [
        {
          path: 'config',
          code: 'IDENTITY_UNPARSABLE',
          message:
            "the target's content could not be read before the sync (the file is not UTF-8 text); it was not kept",
        },
        ...CLOUD_INIT_REMOVED,
      ],
    );
    assert.equal(readText(pool, 'latin-staging-config'), withoutCloudInit(production));

    assert.throws(() => pool.sync('staging', 'latin-prod@s', { hooks: createIdentityHooks() }), {
      code: 'IDENTITY_REFERENCE_UNMAPPED',
      message: /the synced config cannot be read \(the file is not UTF-8 text\)/,
    });
    assert.equal(readText(pool, 'staging-config'), staging, 'nothing changed');
  });
});
