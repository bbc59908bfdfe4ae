/**
 * Child process for the reader-pin crash test: forever writes to `disk`,
 * snapshots it, pins the snapshot as a reader would, deletes it (hidden for
 * its dependents and its reader), now and then reverts `disk` to `base` (so
 * hidden snapshots lose their dependents and stay for their readers alone),
 * checks a pin reads exactly what its snapshot held, and releases the oldest
 * pins. Prints a line per round once it is durable; `held N` when N deleted
 * snapshots are kept for readers alone; `MISMATCH` if a pin read wrong data.
 * The parent kills it with SIGKILL at a random moment.
 */
import { Pool, type SnapshotPin } from '../../agent/engine';

const [dir, cycleArg] = process.argv.slice(2) as [string, string];
const BS = 4096;
const SIZE = 16 * BS;

async function main() {
  const pool = Pool.open(dir);
  const disk = pool.read('disk', 0, SIZE);
  const base = pool.readSnapshot('disk@base', 0, SIZE);
  const pins: Array<{ pin: SnapshotPin; data: Buffer }> = [];
  for (let round = Number(cycleArg) * 1_000_000 + 1; ; round++) {
    const block = (round * 7) % 16;
    const data = Buffer.alloc(BS, (round % 254) + 2);
    pool.write('disk', block * BS, data);
    data.copy(disk, block * BS);
    const name = `p${round}`;
    const s = pool.snapshot('disk', name);
    pins.push({ pin: pool.pinSnapshot(s.uuid), data: Buffer.from(disk) });
    pool.deleteSnapshot(`disk@${name}`);
    if (round % 3 === 0) {
      pool.revert('disk', 'base');
      base.copy(disk);
    }
    const probe = pins[round % pins.length]!;
    if (!probe.pin.read(0, SIZE).equals(probe.data)) process.stdout.write(`MISMATCH ${round}\n`);
    while (pins.length > 3) pins.shift()!.pin.release();
    await pool.flush();
    const lineage = new Set(pool.lineage('disk').map((e) => e.snapshot?.id));
    const held = pool
      .listSnapshots(undefined, { includeHidden: true })
      .filter((x) => x.hidden && !lineage.has(x.id)).length;
    process.stdout.write(held > 0 ? `held ${held}\n` : `round ${round}\n`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
