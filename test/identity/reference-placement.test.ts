/**
 * A disk only production has is mapped by role to staging's member of that
 * role, and placed where staging keeps its own disks: never in production's
 * datastore or folder. A bare file name stays bare (the VM's own directory);
 * when staging's disks give no one directory, the sync is refused until the
 * operator maps the path.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import type { ReferenceOptions } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { syncConfigs } from './helpers/config-sync';

const vmx = (name: string, disks: string[]) =>
  `${[
    '.encoding = "UTF-8"',
    'config.version = "8"',
    `displayName = "${name}"`,
    ...disks.flatMap((file, i) => [`scsi0:${i}.present = "TRUE"`, `scsi0:${i}.fileName = "${file}"`]),
  ].join('\n')}\n`;
const xml = (name: string, files: string[]) =>
  `<domain type='kvm'>\n  <name>${name}</name>\n  <devices>\n${files
    .map(
      (file, i) =>
        `    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='${file}'/>\n      <target dev='vd${'abc'[i]}' bus='virtio'/>\n    </disk>\n`,
    )
    .join('')}  </devices>\n</domain>\n`;

describe('identity: a disk only production has is placed in staging’s own directory', function () {
  this.timeout(120_000);
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(path.join(tempDir('snapsync-placement-'), 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  const sync = (prod: string, staging: string, options: ReferenceOptions = {}) =>
    syncConfigs(pool, prod, staging, options, { prod: ['disk0', 'disk1'], staging: ['disk0'] });

  it("vmx: production's new disk in its own datastore and folder lands in staging's folder", () => {
    const { report, after } = sync(
      vmx('prod-app', [
        '/vmfs/volumes/prod-ds/prod-app/prod-app-disk0.vmdk',
        '/vmfs/volumes/prod-fast-ds/app-legacy/prod-app-disk1.vmdk',
      ]),
      vmx('staging-app', ['/vmfs/volumes/stage-ds/stg/staging-app-disk0.vmdk']),
    );
    assert.match(after, /^scsi0:1\.fileName = "\/vmfs\/volumes\/stage-ds\/stg\/staging-app-disk1\.vmdk"$/m);
    assert.ok(!after.includes('prod-fast-ds') && !after.includes('app-legacy'), after);
    const disk1 = report.references.find((r) => r.path === 'config.scsi0:1.fileName');
    assert.equal(disk1?.status, 'mapped');
    assert.match(
      disk1!.via!,
      /member disk1: prod-app-disk1 → staging-app-disk1, in the target's own directory/,
    );
  });

  it('vmx: staging names its disks by bare file names (the VM’s directory): the new disk is a bare file name too', () => {
    const { after } = sync(
      vmx('prod-app', ['prod-app-disk0.vmdk', '/vmfs/volumes/prod-fast-ds/app-legacy/prod-app-disk1.vmdk']),
      vmx('staging-app', ['staging-app-disk0.vmdk']),
    );
    assert.match(after, /^scsi0:1\.fileName = "staging-app-disk1\.vmdk"$/m);
  });

  it('vmx: staging’s disks give no one directory: refused (IDENTITY_REFERENCE_UNMAPPED) until mapped', () => {
    const prod = vmx('prod-app', [
      'prod-app-disk0.vmdk',
      '/vmfs/volumes/prod-fast-ds/app-legacy/prod-app-disk1.vmdk',
    ]);
    const staging = vmx('staging-app', ['/vmfs/volumes/stage-ds/stg/root.vmdk']);
    assert.throws(() => sync(prod, staging), { code: 'IDENTITY_REFERENCE_UNMAPPED' });
    pool.close();
    pool = Pool.create(path.join(tempDir('snapsync-placement-'), 'pool'), { blockSize: 4096 });
    const wanted = '/vmfs/volumes/stage-ds/stg/data.vmdk';
    const { after } = sync(prod, staging, {
      referenceMap: { '/vmfs/volumes/prod-fast-ds/app-legacy/prod-app-disk1.vmdk': wanted },
    });
    assert.ok(after.includes(`scsi0:1.fileName = "${wanted}"`), after);
  });

  it("libvirt: production's new file-backed disk lands in staging's image directory", () => {
    const { after } = sync(
      xml('prod-app', [
        '/var/lib/libvirt/images/prod/prod-app-disk0.qcow2',
        '/srv/prod-fast/prod-app-disk1.qcow2',
      ]),
      xml('staging-app', ['/var/lib/libvirt/images/staging/staging-app-disk0.qcow2']),
    );
    assert.ok(
      after.includes("<source file='/var/lib/libvirt/images/staging/staging-app-disk1.qcow2'/>"),
      after,
    );
    assert.ok(!after.includes('/srv/prod-fast'), after);
  });
});
