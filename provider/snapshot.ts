import * as pulumi from '@pulumi/pulumi';
import { importAsInput } from './import-option';
import { runtime } from './runtime-loader';

/** The inputs of a {@link Snapshot}. */
export interface SnapshotArgs {
  /** Name of the container to snapshot (a VM's snapshot covers every member at once). */
  container: pulumi.Input<string>;
  /** Snapshot name, unique per container; rotate it (e.g. `nightly-2026-11-24`) to take a new one. */
  name: pulumi.Input<string>;
  /** Labels recorded with the snapshot. */
  labels?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Agent to use instead of the stack's `snapsync:url` (its credentials come from `snapsync:agents`). */
  agentUrl?: pulumi.Input<string>;
}

const LOOKUP = Symbol('snapsync.lookup');

/** The dynamic provider (exported for tests that drive the plugin with it). */
export const provider: pulumi.dynamic.ResourceProvider = {
  configure: (req) => runtime().configure(req.config),
  check: (olds, news) => runtime().snapshot.check(olds, news),
  diff: (id, olds, news) => runtime().snapshot.diff(id, olds, news),
  create: (inputs) => runtime().snapshot.create(inputs),
  read: (id, props) => runtime().snapshot.read(id, props),
  delete: (id, props) => runtime().snapshot.remove(id, props),
};

/**
 * An O(1) snapshot of a container. Any change of its inputs takes a new snapshot (replace).
 * `{ import: 'container@name' }` (or its uuid) adopts an existing one whose inputs match.
 */
export class Snapshot extends pulumi.dynamic.Resource {
  /** The container the snapshot is of. */
  public readonly container!: pulumi.Output<string>;
  /** The snapshot's name (unique per container). */
  public readonly name!: pulumi.Output<string>;
  /** `container@name`: what `SyncFromSnapshot.snapshot` and `Container.fromSnapshot` take. */
  public readonly ref!: pulumi.Output<string>;
  /** The snapshot's UUID on the agent (the resource id). */
  public readonly uuid!: pulumi.Output<string>;
  /** The agent's numeric snapshot id (what a synced target's lineage names). */
  public readonly snapshotId!: pulumi.Output<number>;
  /** Logical size in bytes of the container when the snapshot was taken (0 for a VM: see its members). */
  public readonly size!: pulumi.Output<number>;
  /** When the agent took the snapshot (ISO 8601, UTC). */
  public readonly createdAt!: pulumi.Output<string>;
  /** VM snapshot: the member roles it covers. */
  public readonly memberRoles!: pulumi.Output<string[]>;

  /**
   * A snapshot that already exists on the agent, looked up by `container@name` or its uuid; every
   * output is read from the agent. The stack only reads it: `pulumi destroy` leaves it alone.
   */
  static get(
    name: string,
    id: pulumi.Input<string>,
    state?: { agentUrl?: pulumi.Input<string> },
    opts?: pulumi.CustomResourceOptions,
  ): Snapshot {
    return new Snapshot(name, { [LOOKUP]: true, agentUrl: state?.agentUrl } as never, { ...opts, id });
  }

  constructor(name: string, args: SnapshotArgs, opts?: pulumi.CustomResourceOptions) {
    const lookup = (args as { [LOOKUP]?: true })[LOOKUP] === true;
    const [imported, options] = importAsInput(opts);
    super(
      provider,
      name,
      {
        labels: undefined,
        ...(lookup ? { agentUrl: args.agentUrl, container: undefined, name: undefined } : args),
        ...imported,
        ref: undefined,
        uuid: undefined,
        snapshotId: undefined,
        size: undefined,
        createdAt: undefined,
        memberRoles: undefined,
      },
      options,
      'snapsync',
      'Snapshot',
    );
  }
}
