/** Snapshot commands: snapshot, snapshots, tree, clone, revert. */
import type { Argv, CommandModule } from 'yargs';
import type { Container, Snapshot } from '../../../schema';
import { AgentClient } from '../../client/client';
import { type GlobalArgs, run, table } from '../context';
import { identityLines } from '../identity-report';
import { labelArgs } from '../label-args';
import { drawGraph, graphOf, rootOf } from '../lineage-graph';
import { withWarnings } from '../result-warnings';
import { parseReferenceMap } from './sync';

type Args<T> = GlobalArgs & T;

export const snapshot: CommandModule<
  GlobalArgs,
  Args<{ container: string; name: string; label: string[] }>
> = {
  command: 'snapshot <container> <name>',
  describe: 'Snapshot a container in O(1) (a VM: all its members at once)',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('label', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe: "key=value (repeatable): the providers' snapshots data source finds snapshots by label",
      })
      .example('$0 snapshot prod-web nightly-2026-11-24', 'snapshot a VM and all its disks at once')
      .example(
        '$0 snapshot prod-web nightly-2026-11-24 --label kind=nightly',
        'one that snapsync_snapshots / getSnapshots finds by labels = { kind = "nightly" }',
      ) as never,
  handler: (args) => {
    const labels = labelArgs(args.label);
    return run(
      args,
      (c) =>
        c.call(
          'snapshot',
          { container: args.container, name: args.name, ...(args.label.length > 0 ? { labels } : {}) },
          { idempotencyKey: AgentClient.newKey() },
        ),
      (s: Snapshot) => `snapshot ${s.container}@${s.name} (${s.uuid})`,
    );
  },
};

export const snapshots: CommandModule<GlobalArgs, Args<{ container?: string; all?: boolean }>> = {
  command: 'snapshots [container]',
  describe: 'List snapshots',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('all', {
        type: 'boolean',
        describe: 'include hidden ones',
      })
      .example('$0 snapshots prod-web', "one container's snapshots")
      .example('$0 snapshots --all --json', 'every snapshot in the pool, hidden ones too') as never,
  handler: (args) =>
    run(
      args,
      (c) =>
        c.call('listSnapshots', {
          ...(args.container ? { container: args.container } : {}),
          includeHidden: args.all,
        }),
      (list: Snapshot[]) =>
        table(
          ['SNAPSHOT', 'KIND', 'CREATED', 'HIDDEN'],
          list.map((s) => [`${s.container}@${s.name}`, s.kind, s.createdAt, s.hidden ? 'yes' : '']),
        ),
    ),
};

export const tree: CommandModule<GlobalArgs, Args<{ container?: string }>> = {
  command: 'tree [container]',
  describe:
    "Draw the snapshot lineage like git log --graph: a container's tree (its chain marked *), or the whole pool's",
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .example('$0 tree staging-web-disk0', 'its chain, and whatever else reads through the same snapshots')
      .example('$0 tree staging-web', "a VM: its members' chains")
      .example('$0 tree', 'every data container of the pool')
      .example('$0 tree staging-web-disk0 --json', "the container's lineage, current table first") as never,
  handler: (args) =>
    run(
      args,
      async (c) => {
        const containers = await c.call('listContainers', {});
        const names = containers.filter((x) => x.type !== 'vm').map((x) => x.name);
        const lineages = await Promise.all(
          names.map(async (container) => ({ container, lineage: await c.call('lineage', { container }) })),
        );
        const nodes = graphOf(lineages);
        const lineageOf = (name: string) => lineages.find((l) => l.container === name)?.lineage;
        // A VM: its members' chains (the VM itself has no table), keyed by role.
        const vm = containers.find((x) => x.name === args.container && x.type === 'vm');
        const own =
          args.container === undefined
            ? null
            : vm
              ? Object.entries(vm.members ?? {}).map(([role, member]) => ({
                  role,
                  lineage: lineageOf(member) ?? [],
                }))
              : [{ role: null, lineage: await c.call('lineage', { container: args.container }) }];
        // --json: the container's lineage (current table first), a VM's per role, or every table of the pool.
        const json = own
          ? vm
            ? Object.fromEntries(own.map((o) => [o.role, o.lineage]))
            : own[0]!.lineage
          : [...nodes.values()];
        const chains = (own ?? []).filter((o) => o.lineage.length > 0);
        const roots = own
          ? [...new Set(chains.map((o) => rootOf(nodes, o.lineage[0]!.table)))]
          : [...nodes.values()].filter((n) => n.parent === null).map((n) => n.table);
        const marked = new Set(chains.flatMap((o) => o.lineage.map((e) => e.table)));
        const text = drawGraph(nodes, roots, marked);
        return args.json ? json : text;
      },
      (text: string) => text,
    ),
};

export const clone: CommandModule<
  GlobalArgs,
  Args<{
    snapshot: string;
    name: string;
    map?: string[];
    allowSourceReference?: string[];
    keepIdentity?: boolean;
  }>
> = {
  command: 'clone <snapshot> <name>',
  describe:
    'New container from a snapshot (container@snapshot), O(1); it gets an identity of its own (fresh MACs, UUIDs, disk GUIDs; its own members in its configs)',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('map', {
        type: 'string',
        array: true,
        describe:
          "SRC=DST: a reference of the source's that names no member (a network, a datastore path), or a name or hostname of the source's → the clone's own",
      })
      .option('allow-source-reference', {
        type: 'string',
        array: true,
        describe: "a name or UUID of the source's containers a cloned config may still hold (warned about)",
      })
      .option('keep-identity', {
        type: 'boolean',
        describe:
          "DANGEROUS: an exact copy with the source's MACs, UUIDs, disk GUIDs, disks and networks (forensics, a backup never run beside the source)",
      })
      .example(
        '$0 clone golden-disk@v3 dev-alice-disk0',
        'a writable copy that shares every block with the snapshot (a fresh GPT disk GUID if it has one)',
      )
      .example(
        '$0 clone prod-app@golden dev-1 --map prod-frontend=dev-frontend --map prod-app-01=dev-1',
        "a VM of production's data on the dev network, named dev-1",
      ) as never,
  handler: (args) =>
    run(
      args,
      (c) => {
        const referenceMap = args.map ? parseReferenceMap(args.map) : undefined;
        return c.call(
          'clone',
          {
            source: args.snapshot,
            name: args.name,
            ...(referenceMap ? { referenceMap } : {}),
            ...(args.allowSourceReference ? { allowSourceReferences: args.allowSourceReference } : {}),
            ...(args.keepIdentity ? { keepIdentity: true } : {}),
          },
          { idempotencyKey: AgentClient.newKey() },
        );
      },
      (x: Container) => {
        const lines = [`cloned ${args.snapshot} into ${x.name} (${x.uuid})`];
        if (x.identity) lines.push(...identityLines(x.identity, 'VALUE'));
        else if (args.keepIdentity)
          lines.push(
            "warning: identity kept: the clone has the source's MACs, UUIDs, disk GUIDs, disks and networks",
          );
        return withWarnings(lines.join('\n'), x.warnings);
      },
    ),
};

export const revert: CommandModule<
  GlobalArgs,
  Args<{ container: string; snapshot: string; force?: boolean }>
> = {
  command: 'revert <container> <snapshot>',
  describe: 'Discard the current state and go back to one of its own snapshots',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('force', {
        type: 'boolean',
        describe: 'disconnect attached NBD clients first (else refused with IN_USE while any is attached)',
      })
      .example('$0 revert staging-web safety-g3', 'undo a sync with the safety snapshot it kept') as never,
  handler: (args) =>
    run(
      args,
      (c) =>
        c.call(
          'revert',
          { container: args.container, snapshot: args.snapshot, ...(args.force ? { force: true } : {}) },
          { idempotencyKey: AgentClient.newKey() },
        ),
      (x: Container) => `reverted ${x.name} to ${args.snapshot} (generation ${x.generation})`,
    ),
};
