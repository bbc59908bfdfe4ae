import * as pulumi from '@pulumi/pulumi';
import { importAsInput } from './import-option';
import { runtime } from './runtime-loader';

/** The inputs of a {@link Container}. */
export interface ContainerArgs {
  /** Name of the container on the agent (default: the resource name). Changing it replaces the container. */
  name?: pulumi.Input<string>;
  /** `vm` (a group of members), `vdisk` (a virtual disk) or `file` (a file of a VM). Changing it replaces the container. */
  type: pulumi.Input<'vm' | 'vdisk' | 'file'>;
  /** Logical size in bytes (vdisk and file). Grows in place; shrinking needs `allowShrink`. */
  size?: pulumi.Input<number>;
  /**
   * VM only: role → member container name (e.g. `{ config: cfg.name, disk0: disk.name }`). Updated in place.
   * A member a sync created for a role not declared here (`<vm>-<role>`) is the sync's: no drift, deleted with the VM.
   */
  members?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Free-form labels, kept on the agent. Updated in place. */
  labels?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Create as an O(1) clone of this snapshot (`container@snapshot`). Changing it replaces the container. */
  fromSnapshot?: pulumi.Input<string>;
  /** Allow a smaller `size` to discard the data past the new end. */
  allowShrink?: pulumi.Input<boolean>;
  /** Agent to use instead of the stack's `snapsync:url` (its credentials come from `snapsync:agents`). Changing it replaces the container. */
  agentUrl?: pulumi.Input<string>;
  /**
   * What to do when NBD clients (a running VM) are attached to it (on a resize or delete): `fail` (default: the
   * operation is refused with IN_USE, naming the sessions) or `disconnect` them first (their
   * acknowledged writes are flushed; the VM loses its disk).
   */
  whenAttached?: pulumi.Input<'fail' | 'disconnect'>;
}

const LOOKUP = Symbol('snapsync.lookup');

/** The dynamic provider (exported for tests that drive the plugin with it). */
export const provider: pulumi.dynamic.ResourceProvider = {
  configure: (req) => runtime().configure(req.config),
  check: (olds, news) => runtime().container.check(olds, news),
  diff: (id, olds, news) => runtime().container.diff(id, olds, news),
  create: (inputs) => runtime().container.create(inputs),
  read: (id, props) => runtime().container.read(id, props),
  update: (id, olds, news) => runtime().container.update(id, olds, news),
  delete: (id, props) => runtime().container.remove(id, props),
};

/**
 * A container (VM, virtual disk or file) on a snapsync agent. `{ import: nameOrUuid }` adopts an
 * existing one whose inputs match (provider/README.md, "Managing it: the `import` resource option").
 */
export class Container extends pulumi.dynamic.Resource {
  /** The container's name on the agent. */
  public readonly name!: pulumi.Output<string>;
  /** `vm`, `vdisk` or `file`. */
  public readonly type!: pulumi.Output<'vm' | 'vdisk' | 'file'>;
  /** Logical size in bytes (vdisk and file; a VM has none). A file without a declared size grows with its writes. */
  public readonly size!: pulumi.Output<number | undefined>;
  /** VM only: role → member container name. */
  public readonly members!: pulumi.Output<Record<string, string> | undefined>;
  /** The labels kept on the agent. */
  public readonly labels!: pulumi.Output<Record<string, string> | undefined>;
  /** The snapshot it was cloned from (`container@snapshot`), if it was created as a clone. */
  public readonly fromSnapshot!: pulumi.Output<string | undefined>;
  /** The container's UUID on the agent (never taken from a sync source). */
  public readonly uuid!: pulumi.Output<string>;
  /** Bumped by every sync, revert or clone that gives the container a new base. */
  public readonly generation!: pulumi.Output<number>;
  /** The snapshot its data is based on (`container@snapshot`), if any. */
  public readonly parentSnapshot!: pulumi.Output<string | null>;

  /**
   * A container that already exists on the agent, looked up by its name or its uuid; every output
   * is read from the agent. The stack only reads it: `pulumi destroy` leaves it alone.
   * `state.agentUrl` names another agent than the stack's `snapsync:url`.
   */
  static get(
    name: string,
    id: pulumi.Input<string>,
    state?: { agentUrl?: pulumi.Input<string> },
    opts?: pulumi.CustomResourceOptions,
  ): Container {
    return new Container(name, { [LOOKUP]: true, agentUrl: state?.agentUrl } as never, { ...opts, id });
  }

  constructor(name: string, args: ContainerArgs, opts?: pulumi.CustomResourceOptions) {
    // A lookup (get) sends no name: the provider's read then finds the container by the id alone.
    const lookup = (args as { [LOOKUP]?: true })[LOOKUP] === true;
    const declared = lookup
      ? { agentUrl: args.agentUrl, name: undefined, type: undefined, size: undefined, members: undefined }
      : { ...args, name: args.name ?? name };
    const [imported, options] = importAsInput(opts);
    super(
      provider,
      name,
      {
        labels: undefined,
        fromSnapshot: undefined,
        ...declared,
        ...imported,
        uuid: undefined,
        generation: undefined,
        parentSnapshot: undefined,
      },
      options,
      'snapsync',
      'Container',
    );
  }
}
