/**
 * Refresh staging from production, every night, without copying disks:
 * - the production VM (a config file and two disks),
 * - a snapshot of it named after the day (rotate `snapshotName` to take a new one),
 * - a staging VM of the same shape, synced to that snapshot: it reads
 *   production's data, keeps its own name, UUID, MACs and disk GUIDs, and can
 *   be undone from its safety snapshot.
 */
import * as pulumi from '@pulumi/pulumi';
import { Container, Snapshot, SyncFromSnapshot } from '@snapsync/pulumi';

const config = new pulumi.Config();
const GiB = 2 ** 30;
const diskSize = config.getNumber('diskSize') ?? 20 * GiB;
const snapshotName = config.get('snapshotName') ?? `nightly-${new Date().toISOString().slice(0, 10)}`;
/** While staging runs (its disks attached over NBD) a refresh fails naming the sessions, unless this is `disconnect`. */
const whenAttached = config.get('whenAttached') === 'disconnect' ? 'disconnect' : 'fail';

/** A VM container with a config file and two disks, each its own container. */
function virtualMachine(name: string, env: string): Container {
  const vmConfig = new Container(`${name}-config`, { type: 'file', labels: { env } });
  const disk0 = new Container(`${name}-disk0`, { type: 'vdisk', size: diskSize, labels: { env } });
  const disk1 = new Container(`${name}-disk1`, { type: 'vdisk', size: diskSize, labels: { env } });
  return new Container(name, {
    type: 'vm',
    members: { config: vmConfig.name, disk0: disk0.name, disk1: disk1.name },
    labels: { env },
  });
}

const production = virtualMachine('prod-web', 'production');
const staging = virtualMachine('staging-web', 'staging');

const nightly = new Snapshot('nightly', {
  container: production.name,
  name: snapshotName,
  labels: { purpose: 'staging-refresh' },
});

const refresh = new SyncFromSnapshot('refresh-staging', {
  target: staging.name,
  snapshot: nightly.ref,
  preserve: 'default',
  safetySnapshot: true,
  onDelete: 'keep',
  whenAttached,
});

/** The staging VM's own identity values that the sync kept (identity path → value). */
export const stagingIdentity = refresh.preserved;
/** Identity fields the sync had overwritten with production's and wrote back. */
export const restoredFields = refresh.restored;
/** Undo the last refresh with: snapsync-agent revert staging-web <this snapshot> */
export const safetySnapshot = refresh.safetySnapshotRef;
export const syncedFrom = nightly.ref;
export const generation = refresh.generation;
export const stagingUuid = staging.uuid;
