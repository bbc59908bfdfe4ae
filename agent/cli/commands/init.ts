import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Pool } from '../../engine';
import { parseSize } from '../context';

interface InitArgs {
  pool: string;
  blockSize: number;
  data?: string;
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
        describe: 'Keep data on this raw device or file instead of <pool>/data',
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
    const pool = Pool.create(args.pool, {
      blockSize: args.blockSize,
      dataPath: args.data,
      dataFiles: args.dataFiles,
      capacityBytes: args.capacity,
    });
    const info = pool.info();
    await pool.close();
    let tokenCreated = false;
    if (args.tokenFile && !fs.existsSync(args.tokenFile)) {
      fs.writeFileSync(args.tokenFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
      tokenCreated = true;
    }
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
  },
};
