/**
 * Growing a pool's capacity, online: the device under a pool was extended (an
 * LVM volume, a bigger disk image) or a data file's cap was set too low at
 * init. Blocks are handed out up to `capacityBlocks` (space-map.ts) and striped
 * by block number alone (data-layout.ts), so growing is raising that number:
 * nothing moves, every block keeps its address.
 *
 * Contract: the new capacity is committed in one metadata transaction (a crash
 * leaves the old capacity or the new one) and only then used for allocation.
 * A pool never shrinks: blocks above a smaller capacity may be in use. On a
 * named file or device the capacity cannot exceed its size (the device must be
 * grown first); with the default sparse data files any size up to the format's
 * limit is accepted, the filesystem's room being the operator's to watch.
 * Cost: one stat and one small commit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineCore, MutationOptions } from './core';
import { INVALID_ARGUMENT, IO_ERROR } from './errors';
import { statSize } from './store/block-device';
import { MAX_PHYSICAL_BLOCK } from './store/group-record';
import { DB, META_POOL } from './store/keys';
import type { PoolRecord } from './store/records';

export interface GrowOptions {
  /** The new capacity in bytes; default: the whole named file or device (required with the default data files). */
  capacityBytes?: number;
}

/** The capacity in blocks `options` asks for, checked; the current one when nothing would change. */
export function grownCapacity(core: EngineCore, options: GrowOptions): number {
  const { record } = core;
  const named = path.isAbsolute(record.dataPath);
  const deviceBytes = named ? sizeOf(record.dataPath) : null;
  const wanted = options.capacityBytes ?? deviceBytes;
  if (wanted === null || wanted === undefined)
    throw INVALID_ARGUMENT(
      'the pool keeps its data in sparse data files: give the new capacity (grow --capacity 2T)',
      { argument: 'capacityBytes' },
    );
  if (!Number.isSafeInteger(wanted) || wanted < 1)
    throw INVALID_ARGUMENT('capacity must be a positive number of bytes', {
      argument: 'capacityBytes',
      value: wanted,
    });
  if (deviceBytes !== null && wanted > deviceBytes)
    throw INVALID_ARGUMENT(
      `capacity ${wanted} is more than ${record.dataPath} holds (${deviceBytes} bytes): grow the device or file first`,
      { argument: 'capacityBytes', value: wanted, deviceBytes },
    );
  const whole = Math.floor(wanted / record.blockSize);
  // A device larger than the format addresses is used up to its limit; a capacity asked for beyond it is refused.
  const blocks = Math.min(whole, MAX_PHYSICAL_BLOCK);
  if (options.capacityBytes !== undefined && whole > MAX_PHYSICAL_BLOCK)
    throw INVALID_ARGUMENT(
      `capacity must be at most ${MAX_PHYSICAL_BLOCK} blocks of ${record.blockSize} bytes`,
      {
        argument: 'capacityBytes',
        value: wanted,
      },
    );
  if (blocks < record.capacityBlocks)
    throw INVALID_ARGUMENT(
      `a pool does not shrink: capacity ${blocks * record.blockSize} is less than its ${record.capacityBlocks * record.blockSize} bytes`,
      { argument: 'capacityBytes', value: wanted, capacityBlocks: record.capacityBlocks },
    );
  return blocks;
}

/**
 * Commits `capacityBlocks` as the pool's capacity and lets allocation use it; `result` (the pool's
 * info) is taken inside the transaction, so an idempotent replay answers the same.
 */
export function growPool<T>(
  core: EngineCore,
  capacityBlocks: number,
  result: () => T,
  options: MutationOptions = {},
): T {
  const before = core.record.capacityBlocks;
  if (capacityBlocks === before) return result();
  const setCapacity = (blocks: number) => {
    core.record.capacityBlocks = blocks;
    core.space.setCapacity(blocks);
  };
  try {
    return core.mutate(() => {
      core.batch.put(DB.meta, META_POOL, { ...core.record, capacityBlocks } satisfies PoolRecord);
      setCapacity(capacityBlocks);
      return result();
    }, options);
  } catch (err) {
    // Nothing was committed (mutate is all or nothing), and nothing could allocate meanwhile.
    setCapacity(before);
    throw err;
  }
}

function sizeOf(file: string): number {
  try {
    return statSize(fs.statSync(file));
  } catch (err) {
    throw IO_ERROR('stat data path', err, { path: file });
  }
}
