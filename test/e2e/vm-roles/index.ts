/**
 * The program of test/e2e/vm-roles.e2e.ts: production has a disk staging has
 * not (roles root and logs against root alone), and member names are not
 * `<vm>-<role>`. The sync gives staging a member for logs that no resource
 * declares; `onDelete` comes from the config (default keep).
 */
import * as pulumi from '@pulumi/pulumi';
// The package's source (a project imports `@snapsync/pulumi`; the plugin still loads its built runtime).
import { Container, Snapshot, SyncFromSnapshot } from '../../../provider/index';

const config = new pulumi.Config();
const MiB = 1 << 20;
const sys = new Container('prod-sys', { name: 'vr-prod-sys', type: 'vdisk', size: MiB });
const logs = new Container('prod-logs', { name: 'vr-prod-logs', type: 'vdisk', size: MiB });
const prod = new Container('prod', {
  name: 'vr-prod',
  type: 'vm',
  members: { root: sys.name, logs: logs.name },
});
const staging = new Container('staging-sys', { name: 'vr-stg-system', type: 'vdisk', size: MiB });
const stg = new Container('stg', { name: 'vr-stg', type: 'vm', members: { root: staging.name } });
const nightly = new Snapshot('nightly', { container: prod.name, name: config.get('snapshotName') ?? 'n1' });
const refresh = new SyncFromSnapshot('refresh', {
  target: stg.name,
  snapshot: nightly.ref,
  onDelete: config.get('onDelete') === 'revert' ? 'revert' : 'keep',
});

export const stagingMembers = stg.members;
export const syncedFrom = refresh.snapshot;
