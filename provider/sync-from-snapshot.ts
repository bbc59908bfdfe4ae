import * as pulumi from '@pulumi/pulumi';
import { importAsInput } from './import-option';
import { runtime } from './runtime-loader';

/** The inputs of a {@link SyncFromSnapshot}. */
export interface SyncFromSnapshotArgs {
  /** Name of the container whose data is made to match the snapshot (it keeps its own identity). Changing it replaces. */
  target: pulumi.Input<string>;
  /** The snapshot to sync to, `container@snapshot`. A new snapshot re-syncs in place (an update, not a replace). */
  snapshot: pulumi.Input<string>;
  /**
   * The target's identity fields to keep: `"default"` (every field marked on below), `"none"`, or a
   * list of field paths, each exact or a glob (`*` any run of characters, `?` one), e.g.
   * `["config.uuid.*", "disk*.gpt.diskGuid"]`. A VM sync prefixes each path with the member's role
   * (`config.`, `disk0.`); a plain vdisk or file sync has no prefix. Valid paths:
   * - disks: `<role>.gpt.diskGuid` (on by default), `<role>.mbr.signature` and
   *   `<role>.gpt.partitionN.uniqueGuid` (off: only through a list; a guest's PARTUUIDs name them);
   * - VMware .vmx: `<role>.displayName`, `<role>.uuid.bios`, `<role>.uuid.location`, `<role>.vc.uuid`,
   *   `<role>.guestinfo.hostname`, `<role>.ethernetN.generatedAddress`, `<role>.ethernetN.address`;
   * - libvirt XML: `<role>.libvirt.name`, `<role>.libvirt.uuid`, `<role>.libvirt.interfaceN.mac`;
   * - cloud-init: `<role>.cloudinit.instance-id`, `<role>.cloudinit.local-hostname`.
   * Container metadata (`name`, `uuid`, `labels`, `file.mode`, `file.owner`) is never taken from the
   * source. An exact path that matches no field is a warning (see `warnings`). agent/identity/README.md
   * says where each field's bytes are.
   */
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
   * acknowledged writes are flushed into the safety snapshot; the VM loses its disk, and the disk is
   * fenced against its reconnects until `snapsync-agent unfence` after the VM is stopped).
   */
  whenAttached?: pulumi.Input<'fail' | 'disconnect'>;
  /**
   * For references in synced configs that the target never had (production gained a NIC on `prod-dmz`):
   * source value → the target's (`{ "prod-dmz": "staging-dmz" }`). Without one the agent refuses such a sync
   * (`IDENTITY_REFERENCE_UNMAPPED`) unless the name maps through the VM's members.
   */
  referenceMap?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Names or UUIDs of the source's containers a synced config may still hold (else `IDENTITY_SOURCE_REFERENCE`). */
  allowSourceReferences?: pulumi.Input<pulumi.Input<string>[]>;
}

const LOOKUP = Symbol('snapsync.lookup');

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

/**
 * Keeps a container synced to a snapshot without copying data, preserving the container's own identity.
 * `{ import: targetNameOrUuid }` adopts a target that already descends from the declared snapshot (no sync runs).
 */
export class SyncFromSnapshot extends pulumi.dynamic.Resource {
  /** The synced container's name. */
  public readonly target!: pulumi.Output<string>;
  /** The snapshot the target was last synced to (`container@snapshot`). */
  public readonly snapshot!: pulumi.Output<string>;
  /** Identity path → the target's own value the sync kept (e.g. `config.uuid.bios`). */
  public readonly preserved!: pulumi.Output<Record<string, string>>;
  /**
   * Identity paths the sync wrote: fields it had overwritten and wrote back, identifiers the target never had
   * that got fresh values (`generated`), and references that differed or were mapped.
   */
  public readonly restored!: pulumi.Output<string[]>;
  /** References in the synced configs: the target's value now, the status (kept, mapped, removed) and the source's value. */
  public readonly references!: pulumi.Output<
    Array<{ path: string; value: string; status: string; sourceValue: string; via?: string }>
  >;
  /** Fields or labels that could not be parsed (nothing was written there). */
  public readonly warnings!: pulumi.Output<Array<{ path: string; code: string; message: string }>>;
  /** The safety snapshot of the last sync (`container@name`), or null. */
  public readonly safetySnapshotRef!: pulumi.Output<string | null>;
  /** The target's generation after the last sync. */
  public readonly generation!: pulumi.Output<number>;
  /**
   * False after a refresh found the target no longer descends from the snapshot, or the snapshot
   * deleted and taken again under the same name (the next `pulumi up` re-syncs to the new one).
   */
  public readonly inSync!: pulumi.Output<boolean>;
  /** Why the target no longer descends from the snapshot (set by a refresh), or null. */
  public readonly drift!: pulumi.Output<string | null>;
  /** Every identity field the last sync looked at: path, the target's value and what happened to it. */
  public readonly identity!: pulumi.Output<Array<{ path: string; value: string; status: string }>>;
  /** The UUID of the snapshot the target was synced to (what it holds, even when that name is re-taken). */
  public readonly sourceSnapshotUuid!: pulumi.Output<string>;
  /** Role (`""` for a plain vdisk or file) → the member snapshot id the target must descend from. */
  public readonly sourceSnapshotIds!: pulumi.Output<Record<string, number>>;
  /** The target container's UUID (the resource id). */
  public readonly targetUuid!: pulumi.Output<string>;

  /**
   * The sync state of an existing target (by name or uuid), read from the agent: the snapshot it
   * descends from, its generation and newest safety snapshot (the identity report of a sync the
   * stack did not run is not kept: `preserved`, `restored` are empty). Read only: `pulumi destroy`
   * leaves the target alone.
   */
  static get(
    name: string,
    id: pulumi.Input<string>,
    state?: { agentUrl?: pulumi.Input<string> },
    opts?: pulumi.CustomResourceOptions,
  ): SyncFromSnapshot {
    return new SyncFromSnapshot(name, { [LOOKUP]: true, agentUrl: state?.agentUrl } as never, {
      ...opts,
      id,
    });
  }

  constructor(name: string, args: SyncFromSnapshotArgs, opts?: pulumi.CustomResourceOptions) {
    const lookup = (args as { [LOOKUP]?: true })[LOOKUP] === true;
    const [imported, options] = importAsInput(opts);
    super(
      provider,
      name,
      {
        ...(lookup ? { agentUrl: args.agentUrl, target: undefined, snapshot: undefined } : args),
        ...imported,
        preserved: undefined,
        restored: undefined,
        identity: undefined,
        references: undefined,
        warnings: undefined,
        safetySnapshotRef: undefined,
        generation: undefined,
        sourceSnapshotUuid: undefined,
        sourceSnapshotIds: undefined,
        targetUuid: undefined,
        inSync: undefined,
        drift: undefined,
      },
      options,
      'snapsync',
      'SyncFromSnapshot',
    );
  }
}
