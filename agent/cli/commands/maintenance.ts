/** Long-running maintenance: flatten and fsck, with a progress bar on a terminal. */
import { SingleBar } from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import type { Container, FsckReport } from '../../../schema';
import { AgentClient } from '../../client/client';
import { type GlobalArgs, run, table } from '../context';
import { EXIT } from '../exit-codes';

/** A progress bar on stderr when it is a terminal and output is not JSON. */
export function progressBar(
  args: GlobalArgs,
  label: string,
): { update: (done: number, total: number) => void; stop: () => void } {
  if (args.json || !process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% {value}/{total}`,
    stream: process.stderr,
  });
  let started = false;
  return {
    update: (done, total) => {
      if (!started) bar.start(total, done);
      started = true;
      bar.setTotal(total);
      bar.update(done);
    },
    stop: () => started && bar.stop(),
  };
}

export const flatten: CommandModule<GlobalArgs, GlobalArgs & { container: string; force?: boolean }> = {
  command: 'flatten <container>',
  describe: 'Copy what a container reads through its snapshots into its own table',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('force', {
        type: 'boolean',
        describe: 'disconnect attached NBD clients first (else refused with IN_USE while any is attached)',
      })
      .example(
        '$0 flatten dev-alice-disk0',
        'make a clone independent of its snapshot, so the snapshot can be deleted',
      ) as never,
  handler: (args) => {
    const bar = progressBar(args, 'flatten');
    return run(
      args,
      async (c) => {
        try {
          return await c.call(
            'flatten',
            { container: args.container, ...(args.force ? { force: true } : {}) },
            { idempotencyKey: AgentClient.newKey(), onProgress: bar.update },
          );
        } finally {
          bar.stop();
        }
      },
      (x: Container) => `flattened ${x.name}: it depends on no snapshot`,
    );
  },
};

export const fsck: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'fsck',
  describe: 'Check every invariant of the pool (exit 4 when problems are found)',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .example('$0 fsck', 'check the pool; exit 4 and a table of problems if it is not clean')
      .example('$0 fsck --json || alert', 'from a cron job') as never,
  handler: (args) => {
    const bar = progressBar(args, 'fsck');
    return run(
      args,
      async (c) => {
        try {
          const report = await c.call('fsck', {}, { onProgress: bar.update });
          if (!report.ok) process.exitCode = EXIT.FSCK_PROBLEMS;
          return report;
        } finally {
          bar.stop();
        }
      },
      (r: FsckReport) =>
        r.ok
          ? `clean: ${r.checked.containers} containers, ${r.checked.snapshots} snapshots, ${r.checked.tables} tables, ${r.checked.mapEntries} map entries`
          : table(
              ['CODE', 'PROBLEM'],
              r.problems.map((p) => [p.code, p.message]),
            ),
    );
  },
};
