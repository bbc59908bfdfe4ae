/**
 * Writes the frozen fixture of the current pool format,
 * `test/fixtures/pool-v<format>/` (`npx tsx scripts/make-pool-fixture.ts`):
 * the same contents as every earlier fixture (their README), made through the
 * public engine API. Run once per released format; it refuses to overwrite a
 * fixture, since every later build must open the frozen one exactly
 * (test/engine/format-fixture.test.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../agent/engine';
import { CURRENT_FORMAT_VERSION } from '../agent/engine/store/keys';

/** The fixtures' unit of content: 4 KiB, the block size up to format 3. */
const BS = 4096;
/**
 * From format 4, 16 KiB blocks of four 4 KiB sub-blocks: the 0xcd write after
 * the snapshot is then a sub-block entry (map-masks), which the fixture must hold.
 */
const BLOCK_SIZE = CURRENT_FORMAT_VERSION >= 4 ? 4 * BS : BS;

async function main() {
  const dir = path.join(__dirname, '..', 'test', 'fixtures', `pool-v${CURRENT_FORMAT_VERSION}`);
  if (fs.existsSync(dir)) throw new Error(`${dir} exists: a released fixture is never regenerated`);
  const pool = Pool.create(dir, { blockSize: BLOCK_SIZE, capacityBytes: 256 * BS, metadataReserveBytes: 0 });
  pool.createContainer({ name: 'vm', type: 'vm', labels: { env: 'fixture' } });
  pool.createContainer({ name: 'vm-config', type: 'file', file: { mode: 0o600, uid: 1000, gid: 1000 } });
  pool.write('vm-config', 0, Buffer.from('displayName = "fixture"\n'));
  pool.createContainer({ name: 'vm-disk0', type: 'vdisk', size: 16 * BS });
  pool.write('vm-disk0', 0, Buffer.alloc(3 * BS, 0xab));
  pool.addMember('vm', 'config', 'vm-config');
  pool.addMember('vm', 'disk0', 'vm-disk0');
  pool.snapshot('vm', 'v1');
  pool.write('vm-disk0', BS, Buffer.alloc(BS, 0xcd));
  pool.createContainer({ name: 'clone', type: 'vdisk', size: 16 * BS });
  pool.sync('clone', 'vm-disk0@v1');
  await pool.flush();
  await pool.close();
  // Only what a pool is made of: the lock and the reserve are made again by whoever opens it.
  for (const name of ['pool.lock', 'metadata.reserve', 'meta/lock.mdb']) fs.rmSync(path.join(dir, name), { force: true });
  fs.writeFileSync(
    path.join(dir, 'README.md'),
    fs
      .readFileSync(path.join(dir, '..', 'pool-v1', 'README.md'), 'utf8')
      .replace('Frozen pool, format version 1', `Frozen pool, format version ${CURRENT_FORMAT_VERSION}`)
      .replace(
        'made by the first release of\nthe engine.',
        'made by `scripts/make-pool-fixture.ts`\nwhen the format was released.',
      ),
  );
  console.log(`wrote ${dir}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
