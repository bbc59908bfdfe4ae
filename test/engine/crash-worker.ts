/**
 * Child process for the crash test: writes records to a pool forever, logging
 * each flushed record (sequence, offset, checksum) to stdout only after
 * `flush()` returned, and snapshots / syncs now and then. The parent kills it
 * with SIGKILL at a random moment.
 */
import { createHash } from 'node:crypto';
import { Pool } from '../../agent/engine';

const [dir, startArg] = process.argv.slice(2) as [string, string];
const BS = 4096;
const SLOTS = 64;

async function main() {
  const pool = Pool.open(dir);
  let seq = Number(startArg);
  for (;;) {
    const pending: string[] = [];
    for (let i = 0; i < 8; i++, seq++) {
      const slot = (seq * 7) % SLOTS;
      const data = Buffer.alloc(BS, seq & 0xff);
      data.writeUInt32LE(seq, 0);
      pool.write('disk', slot * BS, data);
      pending.push(`${seq} ${slot} ${createHash('sha256').update(data).digest('hex')}`);
    }
    await pool.flush();
    process.stdout.write(`${pending.join('\n')}\n`);
    if (seq % 40 === 0) {
      pool.snapshot('disk', `s${seq}`);
      pool.sync('other', `disk@s${seq}`, { safetySnapshot: seq % 80 === 0 });
      await pool.durable();
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
