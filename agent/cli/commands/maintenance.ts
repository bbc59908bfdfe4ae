/** Long-running maintenance: flatten and fsck, with a progress bar on a terminal. */
import { SingleBar } from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import type { Container, FsckReport } from '../../../schema';
import { AgentClient } from '../../client/client';
import { bytes, type GlobalArgs, run, table } from '../context';
import { EXIT } from '../exit-codes';
import { fsckPool } from './fsck-pool';

/** Seconds between progress lines when stderr is not a terminal (a cron job's log, a CI run); $SNAPSYNC_PROGRESS_INTERVAL. */
const progressLineSeconds = () => {
  const set = Number(process.env.SNAPSYNC_PROGRESS_INTERVAL);
  return Number.isFinite(set) && set >= 0 ? set : 10;
};

/**
 * A progress bar on stderr when it is a terminal; elsewhere a line every 10 s
 * (an hours-long import said nothing until it ended).
 * Nothing with --json: stdout is the result, stderr stays quiet.
 */
export function progressBar(
  args: GlobalArgs,
  label: string,
  unit: (n: number) => string = String,
): { update: (done: number, total: number) => void; stop: () => void } {
  if (args.json) return { update: () => {}, stop: () => {} };
  if (!process.stderr.isTTY) {
    const every = progressLineSeconds() * 1000;
    let last = Date.now();
    return {
      update: (done, total) => {
        if (Date.now() - last < every || total <= 0) return;
        last = Date.now();
        process.stderr.write(
          `${label}: ${Math.floor((100 * done) / total)}% (${unit(done)} of ${unit(total)})\n`,
        );
      },
      stop: () => {},
    };
  }
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
    // The agent reports how many blocks it has to copy before it starts (none for a replayed request).
    let toCopy: number | null = null;
    let blockSize = 0;
    return run(
      args,
      async (c) => {
        try {
          blockSize = (await c.call('info', {})).blockSize;
          return await c.call(
            'flatten',
            { container: args.container, ...(args.force ? { force: true } : {}) },
            {
              idempotencyKey: AgentClient.newKey(),
              onProgress: (done, total) => {
                toCopy = total;
                bar.update(done, total);
              },
            },
          );
        } finally {
          bar.stop();
        }
      },
      (x: Container) => flattenSummary(x, toCopy, blockSize),
    );
  },
};

/** What flatten did: how much it copied, or that there was nothing to copy; a VM's members. */
function flattenSummary(x: Container, copiedBlocks: number | null, blockSize: number): string {
  const what =
    x.type === 'vm' ? `${x.name}'s members (${Object.values(x.members ?? {}).join(', ')})` : x.name;
  if (copiedBlocks === 0) return `nothing to flatten: ${what} already read through no snapshot`;
  const copied =
    copiedBlocks === null
      ? ''
      : ` (copied ${copiedBlocks} block${copiedBlocks === 1 ? '' : 's'}, ${bytes(copiedBlocks * blockSize)})`;
  return `flattened ${what}${copied}: ${x.type === 'vm' ? 'they depend' : 'it depends'} on no snapshot now`;
}

export const fsck: CommandModule<GlobalArgs, GlobalArgs & { pool?: string }> = {
  command: 'fsck',
  describe: 'Check every invariant of the pool (exit 4 when problems are found)',
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('pool', {
        type: 'string',
        describe:
          'Check this pool directory directly, read-only, without an agent (also one the agent cannot open)',
      })
      .example('$0 fsck', 'check the pool; exit 4 and a table of problems if it is not clean')
      .example('$0 fsck --json || alert', 'from a cron job')
      .example(
        '$0 fsck --pool /var/lib/snapsync',
        'check the pool with no agent running (or one that will not start)',
      ) as never,
  handler: (args) => {
    const bar = progressBar(args, 'fsck');
    if (args.pool)
      return fsckPool(args.pool, { json: args.json, onProgress: bar.update }, fsckText).finally(bar.stop);
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
      fsckText,
    );
  },
};

function fsckText(r: FsckReport): string {
  return r.ok
    ? `clean: ${r.checked.containers} containers, ${r.checked.snapshots} snapshots${hiddenNote(r.checked.hiddenSnapshots)}, ${r.checked.tables} tables, ${r.checked.mapEntries} map entries`
    : table(
        ['CODE', 'PROBLEM'],
        r.problems.map((p) => [p.code, p.message]),
      );
}

/** Deleted snapshots still read through: counted apart, so fsck's count matches what `snapshots` lists. */
function hiddenNote(hidden: number | undefined): string {
  return hidden
    ? ` (+${hidden} deleted, kept while a container or reader reads through ${hidden === 1 ? 'it' : 'them'})`
    : '';
}
