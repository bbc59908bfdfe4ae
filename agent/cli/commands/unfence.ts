/**
 * `unfence`: lets new NBD connections open a vdisk again after a forced
 * operation fenced it (agent/nbd/fences.ts). Run it once the VM that was
 * forced off the disk is stopped: a still-running guest would reconnect and
 * write into the changed disk.
 */
import type { Argv, CommandModule } from 'yargs';
import type { UnfenceResult } from '../../../schema';
import { type GlobalArgs, run } from '../context';

export const unfence: CommandModule<GlobalArgs, GlobalArgs & { container: string }> = {
  command: 'unfence <container>',
  describe: 'Lift the NBD fence a forced operation left on a vdisk (a VM: on its disks); stop the VM first',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .positional('container', { type: 'string', describe: 'Fenced vdisk, or a VM' })
      .example('$0 sessions', 'shows the fences (FENCED lines)')
      .example(
        '$0 unfence staging-web',
        'after stopping the VM: new connections may open its disks again',
      ) as never,
  handler: (args) =>
    run(
      args,
      (c) => c.call('unfence', { container: args.container }),
      (r: UnfenceResult) =>
        r.lifted.length === 0
          ? `no fence on ${args.container}`
          : r.lifted
              .map((f) => `lifted the fence on ${f.container} (since ${f.since}, by ${f.op})`)
              .join('\n'),
    ),
};
