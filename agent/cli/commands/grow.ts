/**
 * `snapsync-agent grow [--capacity SIZE]`: raise the pool's capacity after its
 * device or data file was extended (engine/grow.ts), through the agent while
 * it serves VMs, or with `--pool DIR` on a stopped pool. Prints the capacity
 * before and after; exit 1 with INVALID_ARGUMENT for a smaller capacity or
 * one the device does not hold.
 */
import type { Argv, CommandModule } from 'yargs';
import type { PoolInfo } from '../../../schema';
import { AgentClient } from '../../client/client';
import { Pool } from '../../engine';
import { bytes, type GlobalArgs, parseSize, run } from '../context';
import { reportPoolDirError } from '../pool-dir-error';

type GrowArgs = GlobalArgs & { capacity?: number; pool?: string };

/** What `grow` prints: the capacity before and after (the same when nothing changed). */
interface GrowOutcome {
  before: PoolInfo;
  after: PoolInfo;
}

export const grow: CommandModule<GlobalArgs, GrowArgs> = {
  command: 'grow',
  describe: "Raise the pool's capacity (after its device or data file was extended); never lowers it",
  builder: (y) =>
    (y as unknown as Argv<GlobalArgs>)
      .option('capacity', {
        type: 'string',
        coerce: parseSize,
        describe:
          'New capacity (e.g. 2T); default: the whole named data file or device (required with the default data files)',
      })
      .option('pool', {
        type: 'string',
        describe: 'Grow this pool directory directly, without an agent (no agent may have it open)',
      })
      .example('lvextend -L +500G vg0/snapsync && $0 grow', 'use a grown LVM volume, VMs running')
      .example('$0 grow --capacity 2T', 'raise the cap of a pool on its default sparse data files') as never,
  handler: async (args) => {
    const options = args.capacity === undefined ? {} : { capacityBytes: args.capacity };
    if (args.pool) {
      try {
        const pool = Pool.open(args.pool);
        try {
          const before = pool.info();
          print(args, { before, after: pool.grow(options) });
        } finally {
          await pool.close();
        }
      } catch (err) {
        reportPoolDirError(err, args.json);
      }
      return;
    }
    return run(
      args,
      async (c): Promise<GrowOutcome> => {
        const before = await c.call('info', {});
        const params = args.capacity === undefined ? {} : { capacity: args.capacity };
        const after = await c.call('growPool', params, { idempotencyKey: AgentClient.newKey() });
        return { before, after };
      },
      growText,
    );
  },
};

function print(args: GrowArgs, outcome: GrowOutcome): void {
  process.stdout.write(args.json ? `${JSON.stringify(outcome, null, 2)}\n` : `${growText(outcome)}\n`);
}

function growText({ before, after }: GrowOutcome): string {
  const capacity = (p: PoolInfo) => bytes(p.capacityBlocks * p.blockSize);
  if (after.capacityBlocks === before.capacityBlocks)
    return `capacity is already ${capacity(after)}: nothing to do`;
  return `grew the pool from ${capacity(before)} to ${capacity(after)} (${bytes(after.freeBlocks * after.blockSize)} free)`;
}
