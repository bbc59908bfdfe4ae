import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Pool } from '../../engine';
import { parseSize } from '../context';
import { writeNewTokenFile } from '../new-token-file';
import { reportPoolDirError } from '../pool-dir-error';

interface InitArgs {
  pool: string;
  blockSize: number;
  data?: string;
  overwriteData?: boolean;
  dataFiles?: number;
  capacity?: number;
  tokenFile?: string;
  json?: boolean;
}

export const init: CommandModule<object, InitArgs> = {
  command: 'init',
  describe: 'Create a pool (and a token file for the agent)',
  builder: (y) =>
    (y as Argv<object>)
      .option('pool', { type: 'string', demandOption: true, describe: 'Pool directory to create' })
      .option('block-size', {
        type: 'string',
        default: '64K',
        coerce: parseSize,
        describe: 'Power of two from 4K to 1M, fixed for the pool',
      })
      .option('data', {
        type: 'string',
        describe:
          'Keep data on this raw device or file instead of <pool>/data (it must exist; refused while another pool uses it)',
      })
      .option('overwrite-data', {
        type: 'boolean',
        describe: 'Take a --data file that holds data: what it holds is lost',
      })
      .option('data-files', {
        type: 'number',
        describe:
          'Data files to stripe blocks over, 1-64 (default 4; 1 with --data): several writers of one file wait for its inode lock',
      })
      .option('capacity', {
        type: 'string',
        coerce: parseSize,
        describe: 'Capacity of the data area (e.g. 500G)',
      })
      .option('token-file', {
        type: 'string',
        describe: 'Write a new random token here (mode 0600) unless it exists',
      })
      .example(
        '$0 init --pool /var/lib/snapsync --token-file /etc/snapsync/token',
        'a pool with 64 KiB blocks and a new token',
      ) as unknown as Argv<InitArgs>,
  handler: async (args: ArgumentsCamelCase<InitArgs>) => {
    try {
      await createPool(args);
    } catch (err) {
      reportPoolDirError(err, args.json);
    }
  },
};

/** The token file first, then the pool: if the pool cannot be made, the token file this made goes again. */
async function createPool(args: InitArgs): Promise<void> {
  const token = args.tokenFile ? writeNewTokenFile(args.tokenFile) : null;
  let pool: Pool;
  try {
    pool = Pool.create(args.pool, {
      blockSize: args.blockSize,
      dataPath: args.data,
      overwriteData: args.overwriteData,
      dataFiles: args.dataFiles,
      capacityBytes: args.capacity,
    });
  } catch (err) {
    token?.undo();
    throw err;
  }
  const info = pool.info();
  await pool.close();
  const tokenCreated = token?.created === true;
  const result = {
    pool: args.pool,
    uuid: info.uuid,
    blockSize: info.blockSize,
    capacityBlocks: info.capacityBlocks,
    dataFiles: info.dataFiles,
    tokenFile: args.tokenFile ?? null,
    tokenCreated,
  };
  process.stdout.write(
    args.json
      ? `${JSON.stringify(result, null, 2)}\n`
      : `created pool ${info.uuid} in ${args.pool} (block size ${info.blockSize})${tokenCreated ? `; token in ${args.tokenFile}` : ''}\n`,
  );
}
