/** label: set or remove a container's labels (create and snapshot take them at birth). */
import type { Argv, CommandModule } from 'yargs';
import type { Container } from '../../../schema';
import { AgentClient } from '../../client/client';
import { type GlobalArgs, printable, run } from '../context';
import { labelArgs } from '../label-args';
import { UsageError } from '../usage-error';

type Args = GlobalArgs & { container: string; changes: string[] };

export const label: CommandModule<GlobalArgs, Args> = {
  command: 'label <container> <changes..>',
  describe: "Set (key=value) or remove (key-) a container's labels; the others stay",
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .positional('changes', { type: 'string', array: true, describe: 'key=value to set, key- to remove' })
      .example('$0 label prod-web env=production tier=web', 'set two labels')
      .example('$0 label prod-web tier-', 'remove one') as never,
  handler: (args) =>
    run(
      args,
      async (c) => {
        const removed = args.changes.filter((x) => x.endsWith('-') && !x.includes('='));
        for (const key of removed)
          if (key.length === 1) throw new UsageError('"-" names no label: write key- to remove one');
        const set = labelArgs(
          args.changes.filter((x) => !removed.includes(x)),
          'label',
        );
        const current = (await c.call('describe', { container: args.container })).labels;
        const labels: Record<string, string> = { ...current, ...set };
        for (const key of removed) delete labels[key.slice(0, -1)];
        return c.call(
          'setLabels',
          { container: args.container, labels },
          { idempotencyKey: AgentClient.newKey() },
        );
      },
      (x: Container) =>
        `labels of ${x.name}: ${
          Object.entries(x.labels)
            .map(([k, v]) => printable(`${k}=${v}`))
            .join(' ') || '(none)'
        }`,
    ),
};
