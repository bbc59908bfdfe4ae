/** Snapshot commands: snapshot, snapshots, tree, clone, revert. */
import type { Argv, CommandModule } from 'yargs';
import type { Container, LineageEntry, Snapshot } from '../../../schema';
import { AgentClient } from '../../client/client';
import { type GlobalArgs, run, table } from '../context';

type Args<T> = GlobalArgs & T;

export const snapshot: CommandModule<GlobalArgs, Args<{ container: string; name: string }>> = {
  command: 'snapshot <container> <name>',
  describe: 'Snapshot a container in O(1) (a VM: all its members at once)',
  handler: (args) =>
    run(
      args,
      (c) =>
        c.call(
          'snapshot',
          { container: args.container, name: args.name },
          { idempotencyKey: AgentClient.newKey() },
        ),
      (s: Snapshot) => `snapshot ${s.container}@${s.name} (${s.uuid})`,
    ),
};

export const snapshots: CommandModule<GlobalArgs, Args<{ container?: string; all?: boolean }>> = {
  command: 'snapshots [container]',
  describe: 'List snapshots',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>).option('all', {
      type: 'boolean',
      describe: 'include hidden ones',
    }) as never,
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

export const tree: CommandModule<GlobalArgs, Args<{ container: string }>> = {
  command: 'tree <container>',
  describe: "Draw a container's lineage: its table, then each snapshot it reads through",
  handler: (args) =>
    run(
      args,
      (c) => c.call('lineage', { container: args.container }),
      (lineage: LineageEntry[]) =>
        lineage
          .map((entry, i) => {
            const label = entry.snapshot
              ? `${entry.snapshot.container}@${entry.snapshot.name}${entry.snapshot.hidden ? ' (hidden)' : ''}  ${entry.snapshot.createdAt}`
              : `${args.container} (current, table ${entry.table})`;
            return `${i === 0 ? '*' : '|\n*'} ${label}`;
          })
          .join('\n'),
    ),
};

export const clone: CommandModule<GlobalArgs, Args<{ snapshot: string; name: string }>> = {
  command: 'clone <snapshot> <name>',
  describe: 'New container from a snapshot (container@snapshot), O(1)',
  handler: (args) =>
    run(
      args,
      (c) =>
        c.call('clone', { source: args.snapshot, name: args.name }, { idempotencyKey: AgentClient.newKey() }),
      (x: Container) => `cloned ${args.snapshot} into ${x.name} (${x.uuid})`,
    ),
};

export const revert: CommandModule<GlobalArgs, Args<{ container: string; snapshot: string }>> = {
  command: 'revert <container> <snapshot>',
  describe: 'Discard the current state and go back to one of its own snapshots',
  handler: (args) =>
    run(
      args,
      (c) =>
        c.call(
          'revert',
          { container: args.container, snapshot: args.snapshot },
          { idempotencyKey: AgentClient.newKey() },
        ),
      (x: Container) => `reverted ${x.name} to ${args.snapshot} (generation ${x.generation})`,
    ),
};
