/**
 * fsck finds what it must: each test corrupts one invariant directly in the
 * store (as a bug or a bad disk would) and expects that problem's code.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { open } from 'lmdb';
import { type FsckCode, Pool } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;

/** A pool with a snapshot, a clone and some free space, closed. */
async function makePool(): Promise<string> {
  const dir = tempDir();
  const pool = Pool.create(dir, { blockSize: BS, capacityBytes: 1 << 22 });
  pool.createContainer({ name: 'a', type: 'vdisk', size: 16 * BS });
  pool.write('a', 0, Buffer.alloc(8 * BS, 1));
  pool.snapshot('a', 's');
  pool.write('a', 0, Buffer.alloc(2 * BS, 2));
  pool.clone('a@s', 'b');
  pool.trim('a', 0, BS); // leaves a free extent
  await pool.flush();
  assert.deepEqual((await pool.fsck()).problems, []);
  await pool.close();
  return dir;
}

async function corrupt(
  dir: string,
  edit: (db: (name: string) => ReturnType<ReturnType<typeof open>['openDB']>) => void,
) {
  const root = open({ path: path.join(dir, 'meta'), maxDbs: 16 });
  const dbs = new Map<string, ReturnType<typeof root.openDB>>();
  const db = (name: string) => {
    if (!dbs.has(name)) {
      const encoding = name === 'map' ? 'ordered-binary' : name === 'presence' ? 'binary' : 'msgpack';
      dbs.set(name, root.openDB({ name, encoding, keyEncoding: 'ordered-binary' }));
    }
    return dbs.get(name)!;
  };
  root.transactionSync(() => edit(db));
  await root.close();
}

async function codesAfter(edit: Parameters<typeof corrupt>[1]): Promise<FsckCode[]> {
  const dir = await makePool();
  await corrupt(dir, edit);
  const pool = Pool.open(dir);
  try {
    return [...new Set((await pool.fsck()).problems.map((p) => p.code))].sort();
  } finally {
    await pool.close();
  }
}

function firstEntry(db: ReturnType<ReturnType<typeof open>['openDB']>) {
  for (const entry of db.getRange({})) return entry;
  throw new Error('empty');
}

describe('fsck detects corruption and names it', () => {
  after(cleanupTempDirs);

  it('a free extent that vanished: BLOCK_LEAKED', async () => {
    const codes = await codesAfter((db) => {
      db('free').removeSync(firstEntry(db('free')).key);
    });
    assert.deepEqual(codes, ['BLOCK_LEAKED']);
  });

  it('two entries on one physical block: BLOCK_DOUBLE_OWNED', async () => {
    const codes = await codesAfter((db) => {
      const map = db('map');
      const entries = [...map.getRange({})].filter((e) => e.value !== 0);
      map.putSync(entries[1]!.key, entries[0]!.value);
    });
    assert.ok(codes.includes('BLOCK_DOUBLE_OWNED'), codes.join());
    assert.ok(codes.includes('BLOCK_LEAKED'), codes.join()); // the block it used to own
  });

  it('a map entry past the high-water mark: BLOCK_OUT_OF_RANGE', async () => {
    const codes = await codesAfter((db) => {
      const map = db('map');
      map.putSync(firstEntry(map).key, 10_000);
    });
    assert.ok(codes.includes('BLOCK_OUT_OF_RANGE'), codes.join());
  });

  it('a presence bit that disagrees with the map: PRESENCE_MISMATCH', async () => {
    const codes = await codesAfter((db) => {
      const presence = db('presence');
      const { key, value } = firstEntry(presence);
      const bits = Buffer.from(value as Buffer);
      bits[100] = 0xff;
      presence.putSync(key, bits);
    });
    assert.deepEqual(codes, ['PRESENCE_MISMATCH']);
  });

  it('a parent pointer to a missing table: PARENT_MISSING', async () => {
    const codes = await codesAfter((db) => {
      const tables = db('tables');
      const child = [...tables.getRange({})].find(
        (e) => (e.value as { parent: number | null }).parent !== null,
      )!;
      tables.putSync(child.key, { ...(child.value as object), parent: 999 });
    });
    assert.ok(codes.includes('PARENT_MISSING'), codes.join());
  });

  it('a name index that points elsewhere: NAME_INDEX_MISMATCH', async () => {
    const codes = await codesAfter((db) => {
      db('names').putSync('a', 999);
    });
    assert.deepEqual(codes, ['NAME_INDEX_MISMATCH']);
  });

  it('a snapshot whose table is gone: SNAPSHOT_TABLE_INVALID', async () => {
    const codes = await codesAfter((db) => {
      const snapshots = db('snapshots');
      const { key, value } = firstEntry(snapshots);
      snapshots.putSync(key, { ...(value as object), table: 777 });
    });
    assert.ok(codes.includes('SNAPSHOT_TABLE_INVALID'), codes.join());
  });

  it('overlapping free extents: FREE_EXTENT_INVALID / FREE_OVERLAPS_OWNED', async () => {
    const codes = await codesAfter((db) => {
      db('free').putSync(1, 3);
    });
    assert.ok(codes.includes('FREE_OVERLAPS_OWNED'), codes.join());
  });
});
