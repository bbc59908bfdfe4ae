/**
 * A process that races for a pool's lock when told to (test/engine/pool-lock.test.ts).
 * Messages in: { round, at } (spin until Date.now() ≥ at, then try the lock),
 * 'release', 'exit'. Messages out: { round, won, code? }.
 */
import { PoolLock } from '../../../agent/engine/store/pool-lock';

const dir = process.argv[2]!;
let held: PoolLock | null = null;

process.on('message', (msg: { round: number; at: number } | 'release' | 'exit') => {
  if (msg === 'release') {
    held?.release();
    held = null;
    process.send!('released');
    return;
  }
  if (msg === 'exit') process.exit(0);
  while (Date.now() < msg.at) {
    /* spin: both racers start within the same millisecond */
  }
  try {
    held = PoolLock.acquire(dir);
    process.send!({ round: msg.round, won: true });
  } catch (err) {
    process.send!({ round: msg.round, won: false, code: (err as { code?: string }).code });
  }
});
process.send!('ready');
