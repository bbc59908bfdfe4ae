import * as pulumi from '@pulumi/pulumi';
import { importAsInput } from './import-option';
import { runtime } from './runtime-loader';

/** The inputs of a {@link Container}. */
export interface ContainerArgs {
  /** Name of the container on the agent (default: the resource name). Changing it replaces the container. */
  name?: pulumi.Input<string>;
  /** `vm` (a group of members), `vdisk` (a virtual disk) or `file` (a file of a VM). Changing it replaces the container. */
  type: pulumi.Input<'vm' | 'vdisk' | 'file'>;
  /**
   * Logical size in bytes (vdisk and file). Grows in place; shrinking needs `allowShrink`. Applied at create
   * and when it changes: a sync gives the disk its source's size, which is no drift.
   */
  size?: pulumi.Input<number>;
  /**
   * VM only: role → member container name (e.g. `{ config: cfg.name, disk0: disk.name }`). Updated in place.
   * A member a sync created for a role not declared here (`<vm>-<role>`) is the sync's: no drift, deleted with the VM.
   */
  members?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Free-form labels, kept on the agent. Updated in place. */
  labels?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /**
   * Create as a clone of this snapshot (`container@snapshot`). Changing it replaces the container. A clone
   * gets an identity of its own (fresh MACs, UUIDs, disk GUIDs; its config names its own members): see the
   * `identity`, `references` and `warnings` outputs.
   */
  fromSnapshot?: pulumi.Input<string>;
  /**
   * `fromSnapshot` only: a source value → the clone's, for what the clone cannot take from the source (a
   * network, a datastore path: without a mapping the clone fails with IDENTITY_REFERENCE_UNMAPPED) and names
   * or hostnames it may not invent. E.g. `{ 'prod-net': 'dev-net' }`. Changing it replaces the container.
   */
  referenceMap?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /**
   * `fromSnapshot` only: names or UUIDs of the source's containers a cloned config may still hold (else
   * IDENTITY_SOURCE_REFERENCE). Changing it replaces the container.
   */
  allowSourceReferences?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * `fromSnapshot` only. DANGEROUS: the exact copy, keeping the source's identity: its MACs, UUIDs and disk
   * GUIDs, and its config's disks and networks (run beside the source, it takes production's addresses and
   * writes production's disks). For forensics or a backup never run beside the source. Changing it replaces.
   */
  keepIdentity?: pulumi.Input<boolean>;
  /** Allow a smaller `size` to discard the data past the new end. */
  allowShrink?: pulumi.Input<boolean>;
  /**
   * On delete, also delete the container's snapshots that are no resource of the stack (taken by hand).
   * Without it (default) `pulumi destroy` refuses with HAS_DEPENDENTS, naming them: nothing an operator
   * snapshotted is deleted silently. Its syncs' safety snapshots go with it either way.
   */
  deleteSnapshots?: pulumi.Input<boolean>;
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
  /** A clone's identity fields: the clone's value, status (`generated`, `mapped`, …) and the source's value. Empty for no clone, or `keepIdentity`. */
  public readonly identity!: pulumi.Output<
    Array<{ path: string; value: string; status: string; sourceValue?: string }>
  >;
  /** References in a clone's configs: the clone's value now, the status (kept, mapped, removed) and the source's value. */
  public readonly references!: pulumi.Output<
    Array<{ path: string; value: string; status: string; sourceValue: string; via?: string }>
  >;
  /** A clone's identity warnings (e.g. IDENTITY_FROM_SOURCE: a hostname the clone still has from the source). */
  public readonly warnings!: pulumi.Output<Array<{ path: string; code: string; message: string }>>;
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
        identity: undefined,
        references: undefined,
        warnings: undefined,
      },
      options,
      'snapsync',
      'Container',
    );
  }
}
