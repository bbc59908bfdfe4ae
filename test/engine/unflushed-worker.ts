/**
 * Child process for test/engine/unflushed-writes.test.ts: opens the pool with the commit interval
 * it is given (ms), writes BLOCKS blocks of `value` into `disk` without ever flushing, says
 * "written" and waits to be killed.
 */
import { Pool } from '../../agent/engine';

const [dir, interval, value] = process.argv.slice(2) as [string, string, string];
export const BLOCKS = 32;
export const BS = 4096;

if (require.main === module) {
  const pool = Pool.open(dir, { commitIntervalMs: Number(interval) });
  for (let b = 0; b < BLOCKS; b++) pool.write('disk', b * BS, Buffer.alloc(BS, Number(value)));
  process.stdout.write('written\n');
  // Keep the process alive (the commit timer does not) until the parent's SIGKILL.
  setInterval(() => {}, 1000);
}
