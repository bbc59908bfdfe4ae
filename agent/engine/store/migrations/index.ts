/**
 * Pool format migrations, one directory per target format (`2/`: from 1, `3/`: from 2, `4/`: from 3).
 * `migrate` brings a pool record of any supported older format to the current
 * one, a step at a time; each step is one LMDB transaction, so a crash leaves
 * the pool in one released format or the next, never between (fsck passes on
 * either: it reads every supported format).
 *
 * The caller holds the pool lock. A pool of a newer or unknown format is not
 * for this function: the caller refuses it with UNSUPPORTED_VERSION first.
 */
import { CORRUPT } from '../../errors';
import { CURRENT_FORMAT_VERSION } from '../keys';
import type { MetadataStore } from '../metadata-store';
import type { PoolRecord } from '../records';
import * as format2 from './2';
import * as format3 from './3';
import * as format4 from './4';

interface Step {
  from: number;
  to: number;
  run(store: MetadataStore, record: PoolRecord): PoolRecord;
}

const STEPS: Step[] = [
  { from: format2.FROM_VERSION, to: format2.TO_VERSION, run: format2.migrateToFormat2 },
  { from: format3.FROM_VERSION, to: format3.TO_VERSION, run: format3.migrateToFormat3 },
  { from: format4.FROM_VERSION, to: format4.TO_VERSION, run: format4.migrateToFormat4 },
];

/** Returns the record as it is now stored (the same object if the pool was already current). */
export function migrate(store: MetadataStore, record: PoolRecord): PoolRecord {
  let current = record;
  while (current.formatVersion < CURRENT_FORMAT_VERSION) {
    const step = STEPS.find((s) => s.from === current.formatVersion);
    if (step === undefined)
      throw CORRUPT(`no migration from pool format ${current.formatVersion}`, {
        formatVersion: current.formatVersion,
      });
    current = step.run(store, current);
  }
  return current;
}
