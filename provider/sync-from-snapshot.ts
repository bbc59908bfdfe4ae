import * as pulumi from '@pulumi/pulumi';
import { runtime } from './runtime-loader';

/** The inputs of a {@link SyncFromSnapshot}. */
export interface SyncFromSnapshotArgs {
  /** Name of the container whose data is made to match the snapshot (it keeps its own identity). Changing it replaces. */
  target: pulumi.Input<string>;
  /** The snapshot to sync to, `container@snapshot`. A new snapshot re-syncs in place (an update, not a replace). */
  snapshot: pulumi.Input<string>;
  /** Identity fields to keep: `"default"`, `"none"`, or field names/globs (e.g. `["config.uuid.*", "disk*.gpt.diskGuid"]`). */
  preserve?: pulumi.Input<'default' | 'none' | pulumi.Input<string>[]>;
  /** Freeze the target's state before each sync so it can be undone (default true). */
  safetySnapshot?: pulumi.Input<boolean>;
  /** On delete: `keep` the synced data (default) or `revert` the target to the safety snapshot. */
  onDelete?: pulumi.Input<'keep' | 'revert'>;
  /** Any change of these values forces a fresh sync (e.g. `[new Date().toDateString()]` for a daily refresh). */
  triggers?: pulumi.Input<unknown[]>;
  /** VM only: the member roles to sync (default: every role in the snapshot). */
  members?: pulumi.Input<pulumi.Input<string>[]>;
  /** Agent to use instead of the stack's `snapsync:url` (its credentials come from `snapsync:agents`). Changing it replaces. */
  agentUrl?: pulumi.Input<string>;
  /**
   * What to do when NBD clients (a running VM) are attached to the target: `fail` (default: the
   * operation is refused with IN_USE, naming the sessions) or `disconnect` them first (their
   * acknowledged writes are flushed into the safety snapshot; the VM loses its disk).
   */
  whenAttached?: pulumi.Input<'fail' | 'disconnect'>;
}

/** The dynamic provider (exported for tests that drive the plugin with it). */
export const provider: pulumi.dynamic.ResourceProvider = {
  configure: (req) => runtime().configure(req.config),
  check: (olds, news) => runtime().syncFromSnapshot.check(olds, news),
  diff: (id, olds, news) => runtime().syncFromSnapshot.diff(id, olds, news),
  create: (inputs) => runtime().syncFromSnapshot.create(inputs),
  read: (id, props) => runtime().syncFromSnapshot.read(id, props),
  update: (id, olds, news) => runtime().syncFromSnapshot.update(id, olds, news),
  delete: (id, props) => runtime().syncFromSnapshot.remove(id, props),
};

/** Keeps a container synced to a snapshot without copying data, preserving the container's own identity. */
export class SyncFromSnapshot extends pulumi.dynamic.Resource {
  public readonly target!: pulumi.Output<string>;
  public readonly snapshot!: pulumi.Output<string>;
  /** Identity path → the target's own value the sync kept (e.g. `config.uuid.bios`). */
  public readonly preserved!: pulumi.Output<Record<string, string>>;
  /** Identity paths the sync had overwritten and that were written back. */
  public readonly restored!: pulumi.Output<string[]>;
  /** Fields or labels that could not be parsed (nothing was written there). */
  public readonly warnings!: pulumi.Output<Array<{ path: string; code: string; message: string }>>;
  /** The safety snapshot of the last sync (`container@name`), or null. */
  public readonly safetySnapshotRef!: pulumi.Output<string | null>;
  /** The target's generation after the last sync. */
  public readonly generation!: pulumi.Output<number>;
  /** False after a refresh found the target no longer descends from the snapshot. */
  public readonly inSync!: pulumi.Output<boolean>;
  public readonly drift!: pulumi.Output<string | null>;

  constructor(name: string, args: SyncFromSnapshotArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        ...args,
        preserved: undefined,
        restored: undefined,
        identity: undefined,
        warnings: undefined,
        safetySnapshotRef: undefined,
        generation: undefined,
        sourceSnapshotUuid: undefined,
        sourceSnapshotIds: undefined,
        targetUuid: undefined,
        inSync: undefined,
        drift: undefined,
      },
      opts,
      'snapsync',
      'SyncFromSnapshot',
    );
  }
}
