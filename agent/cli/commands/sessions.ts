/** `sessions`: the NBD clients attached to a container (or to any), with mode, address and since when. */
import type { Argv, CommandModule } from 'yargs';
import type { SessionsResult } from '../../../schema';
import { type GlobalArgs, run, table } from '../context';

export const sessions: CommandModule<GlobalArgs, GlobalArgs & { container?: string }> = {
  command: 'sessions [container]',
  describe: 'List attached NBD sessions (every container, or one; a VM: its disks)',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .example('$0 sessions', 'every client attached over NBD')
      .example('$0 sessions staging-web --json', "a VM's attached disks, as JSON") as never,
  handler: (args) =>
    run(
      args,
      (c) => c.call('sessions', args.container ? { container: args.container } : {}),
      (r: SessionsResult) =>
        [
          r.sessions.length === 0
            ? 'no NBD sessions'
            : table(
                ['ID', 'CONTAINER', 'EXPORT', 'MODE', 'CLIENT', 'SINCE'],
                r.sessions.map((s) => [s.id, s.container, s.export, s.mode, s.client, s.since]),
              ),
          // A fenced export refuses every new connection until the operator lifts it.
          ...(r.fences ?? []).map(
            (f) =>
              `FENCED ${f.container} since ${f.since} by ${f.op} (disconnected ${f.clients.join(', ')}): ` +
              `stop that VM, then snapsync-agent unfence ${f.container}`,
          ),
        ].join('\n'),
    ),
};
