/**
 * Child process of migration-crash.test.ts: migrates the pool in argv[2]
 * (`migratePoolDir`), printing `start` just before and `done <ms>` after, so
 * the test can SIGKILL it at any point in between.
 */
import { migratePoolDir } from '../../agent/engine';

const dir = process.argv[2]!;
process.stdout.write('start\n');
const t0 = performance.now();
migratePoolDir(dir).then(
  (result) => process.stdout.write(`done ${(performance.now() - t0).toFixed(1)} ${JSON.stringify(result)}\n`),
  (err) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
