/**
 * The program of test/e2e/import-option.e2e.ts: a disk, its golden snapshot
 * and a copy synced to it, all made on the agent by hand; with `adopt` set,
 * each resource carries the `import` option with the object's id (the disk
 * by uuid, the snapshot by `container@name`, the sync by target name).
 */
import * as pulumi from '@pulumi/pulumi';
// The package's source (a project imports `@snapsync/pulumi`; the plugin still loads its built runtime).
import { Container, Snapshot, SyncFromSnapshot } from '../../../provider/index';

const config = new pulumi.Config();
const adopt = config.getBoolean('adopt') === true;
const importing = (id: string): pulumi.CustomResourceOptions => (adopt ? { import: id } : {});

const disk = new Container(
  'disk',
  { name: 'legacy-disk', type: 'vdisk', size: config.requireNumber('diskSize'), labels: { team: 'db' } },
  importing(config.require('diskUuid')),
);
const golden = new Snapshot(
  'golden',
  { container: disk.name, name: config.get('snapshotName') ?? 'golden' },
  importing('legacy-disk@golden'),
);
const copy = new SyncFromSnapshot(
  'copy',
  { target: 'legacy-copy', snapshot: golden.ref, onDelete: 'keep' },
  importing('legacy-copy'),
);

export const diskUuid = disk.uuid;
export const snapshotUuid = golden.uuid;
export const syncedFrom = copy.snapshot;
export const safetySnapshot = copy.safetySnapshotRef;
