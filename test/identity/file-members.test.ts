/**
 * The safety net over every synced file member, whatever its role or format:
 * a VM's launch script (role `launch`, a QEMU command line no profile parses)
 * or EFI variable store that still names production's disk, VM or tap after
 * a sync refuses it, as a config would; a file that names nothing of
 * production's syncs cleanly; one too large to search is a warning.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import {
  createIdentityHooks,
  type IdentityReport,
  MAX_CONFIG_BYTES,
  type ReferenceOptions,
} from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { addConfig } from './helpers/pool';

/** A VM's QEMU launch script: its name, its disk's NBD export and its tap all name the VM. */
const launchScript = (vm: string) =>
  [
    '#!/bin/sh',
    `exec qemu-system-x86_64 -name ${vm} -m 2048 \\`,
    `  -drive file=nbd+unix:///${vm}-disk0?socket=/run/snapsync/nbd.sock,format=raw,if=virtio \\`,
    `  -netdev tap,id=n0,ifname=tap-${vm}`,
    '',
  ].join('\n');

/** An EFI variable store: binary, with a boot entry whose description is UTF-16LE text (as firmware stores it). */
function nvram(bootDescription: string): Buffer {
  const header = Buffer.from([0x5f, 0x46, 0x56, 0x48, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfe, 0x01, 0x80]);
  const name = Buffer.from('Boot0001\0', 'utf16le');
  const description = Buffer.from(`${bootDescription}\0`, 'utf16le');
  return Buffer.concat([header, name, Buffer.from([0x01, 0x00, 0x00, 0x00, 0x2c, 0x00]), description]);
}

describe('identity: the safety net over every synced file member', function () {
  this.timeout(120_000);
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(path.join(tempDir('snapsync-file-members-'), 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  /** A VM with a disk and one file member per role, each holding what `files` makes of the VM's name. */
  function vm(name: string, files: Record<string, (vm: string) => string | Buffer>): void {
    pool.createContainer({ name, type: 'vm' });
    // Over the bound the safety net searches vdisks: a data disk holds production's data (its name) by design.
    pool.createContainer({ name: `${name}-disk0`, type: 'vdisk', size: MAX_CONFIG_BYTES + 64 * 1024 });
    pool.write(`${name}-disk0`, 0, Buffer.from(`DATA-OF-${name}`));
    pool.addMember(name, 'disk0', `${name}-disk0`);
    for (const [role, content] of Object.entries(files)) addConfig(pool, name, role, content(name));
  }
  const bytes = (name: string) => pool.read(name, 0, pool.describe(name).size);
  const sync = (options: ReferenceOptions = {}) =>
    pool.sync('staging-web', 'prod-web@nightly', { hooks: createIdentityHooks('default', options) })
      .identity as IdentityReport;
  /** Asserts a refusal and which member names which of the source's containers. */
  const refusal =
    (names: Array<[string, string]>) =>
    (err: { code: string; details: { found: Array<{ path: string; name: string }> } }) => {
      assert.equal(err.code, 'IDENTITY_SOURCE_REFERENCE');
      assert.deepEqual(
        err.details.found.map((f) => [f.path, f.name]),
        names,
      );
      return true;
    };

  for (const role of ['launch', 'qemu-cmdline']) {
    it(`a launch script under role "${role}" naming production's VM, disk and tap refuses the sync; nothing changes; allowed by name it is a warning`, () => {
      vm('prod-web', { [role]: launchScript });
      vm('staging-web', { [role]: launchScript });
      pool.snapshot('prod-web', 'nightly');
      const before = bytes(`staging-web-${role}`);
      assert.throws(
        () => sync(),
        refusal([
          [role, 'prod-web'],
          [role, 'prod-web-disk0'],
          [role, 'prod-web'],
        ]),
      );
      assert.deepEqual(bytes(`staging-web-${role}`), before, "staging's launch script is its own");
      assert.equal(
        bytes('staging-web-disk0').toString('utf8', 0, 19),
        'DATA-OF-staging-web',
        'nothing synced',
      );

      const report = sync({ allowSourceReferences: ['prod-web', 'prod-web-disk0'] });
      assert.deepEqual(
        report.warnings.map((w) => [w.path, w.code]),
        [[role, 'IDENTITY_SOURCE_REFERENCE']],
      );
      assert.match(
        report.warnings[0]!.message,
        /line 3 \(prod-web-disk0\): -drive file=nbd\+unix:\/\/\/prod-web-disk0/,
      );
    });
  }

  it("a line staging's launch script had word for word before the sync does not count", () => {
    const shared = '# golden image: built from prod-web, see the runbook';
    vm('prod-web', { launch: () => `${shared}\n${launchScript('staging-web')}` });
    vm('staging-web', { launch: (name) => `${shared}\n${launchScript(name)}` });
    pool.snapshot('prod-web', 'nightly');
    assert.deepEqual(sync().warnings, []);
  });

  it("an EFI variable store naming production's VM in UTF-16LE, or its disk in ASCII, refuses the sync", () => {
    vm('prod-web', { nvram: (name) => nvram(`${name} boot disk`) });
    vm('staging-web', { nvram: (name) => nvram(`${name} boot disk`) });
    pool.snapshot('prod-web', 'nightly');
    assert.throws(() => sync(), refusal([['nvram', 'prod-web']]));

    // An HTTP-boot URI device path holds ASCII in the middle of binary.
    const uri = (disk: string) =>
      Buffer.concat([
        nvram('UEFI HTTP'),
        Buffer.from([0x03, 0x18, 0x00]),
        Buffer.from(`nbd://host/${disk}\0`),
      ]);
    pool.write('prod-web-nvram', 0, uri('prod-web-disk0'));
    pool.write('staging-web-nvram', 0, uri('staging-web-disk0'));
    pool.snapshot('prod-web', 'nightly2');
    assert.throws(
      () => pool.sync('staging-web', 'prod-web@nightly2', { hooks: createIdentityHooks() }),
      refusal([['nvram', 'prod-web-disk0']]),
    );
  });

  it('an EFI variable store that names nothing of production’s syncs cleanly, and is production’s', () => {
    vm('prod-web', { nvram: () => nvram('UEFI QEMU HARDDISK QM00001') });
    vm('staging-web', { nvram: () => nvram('UEFI Misc Device') });
    pool.snapshot('prod-web', 'nightly');
    assert.deepEqual(sync().warnings, []);
    assert.deepEqual(bytes('staging-web-nvram'), nvram('UEFI QEMU HARDDISK QM00001'));
  });

  it('a plain file sync is searched too', () => {
    for (const name of ['prod-notes', 'staging-notes']) {
      pool.createContainer({ name, type: 'file' });
      pool.write(name, 0, Buffer.from(`restore ${name} from the backup of ${name}\n`));
      pool.snapshot(name, 's');
    }
    assert.throws(() => pool.sync('staging-notes', 'prod-notes@s', { hooks: createIdentityHooks() }), {
      code: 'IDENTITY_SOURCE_REFERENCE',
    });
    // Its UUID in capitals, in binary, is found too.
    const uuid = pool.describe('prod-notes').uuid.toUpperCase();
    pool.write(
      'prod-notes',
      0,
      Buffer.concat([Buffer.from([0xff, 0x00, 0xfe]), Buffer.from(uuid), Buffer.alloc(64)]),
    );
    pool.snapshot('prod-notes', 's2');
    assert.throws(
      () => pool.sync('staging-notes', 'prod-notes@s2', { hooks: createIdentityHooks() }),
      (err: { code: string; details: { found: Array<{ path: string; name: string }> } }) =>
        err.code === 'IDENTITY_SOURCE_REFERENCE' &&
        err.details.found.some((f) => f.path === 'content' && f.name === uuid.toLowerCase()),
    );
  });

  it('a file member over 4 MiB is not searched: the sync goes through with IDENTITY_TOO_LARGE on it', () => {
    const kernel = (name: string) => Buffer.concat([Buffer.from(name), Buffer.alloc(MAX_CONFIG_BYTES, 0x90)]);
    vm('prod-web', { kernel });
    vm('staging-web', { kernel });
    pool.snapshot('prod-web', 'nightly');
    const report = sync();
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      [['kernel', 'IDENTITY_TOO_LARGE']],
    );
    assert.match(
      report.warnings[0]!.message,
      /not searched for the source's names; check it names none of prod-web/,
    );
  });
});
