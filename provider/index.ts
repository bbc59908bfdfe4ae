/** snapsync's Pulumi provider: declare containers, snapshots and syncs on snapsync agents. */
export { Container, type ContainerArgs } from './container';
export { Snapshot, type SnapshotArgs } from './snapshot';
export { SyncFromSnapshot, type SyncFromSnapshotArgs } from './sync-from-snapshot';
