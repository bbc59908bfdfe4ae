/**
 * `snapsync-agent migrate --pool DIR`: the pool's on-disk format brought to
 * this build's, offline (engine/offline-migrate.ts), at a moment the operator
 * chooses; the agent would otherwise do it when it opens the pool. Exit 0
 * when the pool is (now) current, 1 with the error code otherwise
 * (POOL_LOCKED while an agent has it open, UNSUPPORTED_VERSION, …).
 */
import type { Argv, CommandModule } from 'yargs';
import { migratePoolDir } from '../../engine';
import type { GlobalArgs } from '../context';
import { reportPoolDirError } from '../pool-dir-error';

export const migrate: CommandModule<GlobalArgs, GlobalArgs & { pool: string }> = {
  command: 'migrate',
  describe: "Bring a pool's on-disk format to this build's, without an agent (crash-safe: all or nothing)",
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('pool', {
        type: 'string',
        demandOption: true,
        describe: 'Pool directory (no agent may have it open)',
      })
      .example(
        '$0 migrate --pool /var/lib/snapsync',
        'before starting the new agent on an older pool',
      ) as never,
  handler: async (args) => {
    try {
      const result = await migratePoolDir(args.pool);
      process.stdout.write(
        args.json
          ? `${JSON.stringify(result, null, 2)}\n`
          : result.migrated
            ? `migrated ${args.pool} from format ${result.from} to format ${result.to}\n`
            : `${args.pool} is already format ${result.to}: nothing to do\n`,
      );
    } catch (err) {
      reportPoolDirError(err, args.json);
    }
  },
};
